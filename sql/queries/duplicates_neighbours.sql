-- For each image of %(ids)s, its %(k)s nearest other present images (on the HNSW index, one scan per
-- image), kept when within %(max_distance)s: the edges of the near-duplicate groups.
SELECT a.id, n.id, n.distance
FROM public.images a
CROSS JOIN LATERAL (
    SELECT b.id, b.embedding <=> a.embedding AS distance
    FROM public.images b
    WHERE b.status = 'ok' AND b.id <> a.id
      AND (%(dataset_id)s::bigint IS NULL OR b.dataset_id = %(dataset_id)s::bigint)
    ORDER BY b.embedding <=> a.embedding
    LIMIT %(k)s
) n
WHERE a.id = ANY(%(ids)s::bigint[]) AND n.distance <= %(max_distance)s::float8
