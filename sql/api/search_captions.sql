-- vstore.search_captions(q, k): the k captions nearest to q (text->text, or image->text with an image vector),
-- only captions of images that are present (status 'ok'). Filtered HNSW scans: with many missing images,
-- SET hnsw.iterative_scan = relaxed_order (pgvector >= 0.8) so the scan keeps going until k rows pass.
CREATE OR REPLACE FUNCTION vstore.search_captions(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> q
    FROM public.captions c
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
    ORDER BY c.embedding <=> q
    LIMIT k
$$;
