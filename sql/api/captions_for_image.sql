-- vstore.captions_for_image(image_id, k): image->text, the k captions nearest to a stored image, only
-- captions of images that are present (status 'ok'; see search_captions about iterative scans).
CREATE OR REPLACE FUNCTION vstore.captions_for_image(image_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    FROM public.captions c
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
    ORDER BY c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    LIMIT k
$$;
