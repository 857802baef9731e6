-- The k images nearest to %(q)s (cosine distance), on the HNSW/IVFFlat index of images.embedding.
-- Optional structured filters (NULL = not filtered); with iterative index scans (relaxed order) the inner
-- query keeps scanning until k rows pass them, and the outer ORDER BY restores the exact order.
SELECT n.id, n.path, d.root, d.name, n.split, n.distance
FROM (
    SELECT i.id, i.dataset_id, i.path, i.split, i.embedding <=> %(q)s AS distance
    FROM public.images i
    WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
      AND (%(exclude_id)s::bigint IS NULL OR i.id <> %(exclude_id)s::bigint)
    ORDER BY i.embedding <=> %(q)s
    LIMIT %(k)s
) n
JOIN public.datasets d ON d.id = n.dataset_id
ORDER BY n.distance, n.id
