-- vstore.similar_images(image_id, k): the k images nearest to a stored image, the image itself excluded.
CREATE OR REPLACE FUNCTION vstore.similar_images(image_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = image_id)
    FROM public.images i
    WHERE i.status = 'ok' AND i.id <> image_id
    ORDER BY i.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = image_id)
    LIMIT k
$$;
