-- vstore.search_images(q, k): the k images nearest to q by cosine distance, on the HNSW index.
-- A plain SQL function (no SET clause, not STRICT) so PostgreSQL inlines it and the index is used.
CREATE OR REPLACE FUNCTION vstore.search_images(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> q
    FROM public.images i
    WHERE i.status = 'ok'
    ORDER BY i.embedding <=> q
    LIMIT k
$$;
