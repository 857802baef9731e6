-- vstore.images_for_caption(caption_id, k): text->image from a stored caption, the k nearest images.
CREATE OR REPLACE FUNCTION vstore.images_for_caption(caption_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> (SELECT c.embedding FROM public.captions c WHERE c.id = caption_id)
    FROM public.images i
    WHERE i.status = 'ok'
    ORDER BY i.embedding <=> (SELECT c.embedding FROM public.captions c WHERE c.id = caption_id)
    LIMIT k
$$;
