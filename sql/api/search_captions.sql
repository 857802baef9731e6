-- vstore.search_captions(q, k): the k captions nearest to q (text->text, or image->text with an image vector).
CREATE OR REPLACE FUNCTION vstore.search_captions(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> q
    FROM public.captions c
    ORDER BY c.embedding <=> q
    LIMIT k
$$;
