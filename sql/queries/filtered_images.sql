-- The k images nearest to %(q)s that pass the filters (NULL = not filtered), on the HNSW index with an
-- iterative scan (SET LOCAL hnsw.iterative_scan by the caller), then the cutoff %(max_distance)s. The plan
-- vstore picks when the filter is not selective (search/filters.py); filtered_images_exact otherwise.
SELECT n.id, n.path, d.root, d.name, n.split, n.distance, n.taken_at
FROM (
    SELECT i.id, i.dataset_id, i.path, i.split, i.taken_at, i.embedding <=> %(q)s AS distance
    FROM public.images i
    WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
      AND (%(label)s::text IS NULL OR string_to_array(i.label, '|') @> ARRAY[%(label)s::text])
      AND (%(taken_after)s::timestamptz IS NULL OR i.taken_at >= %(taken_after)s::timestamptz)
      AND (%(taken_before)s::timestamptz IS NULL OR i.taken_at < %(taken_before)s::timestamptz)
      AND (%(min_width)s::integer IS NULL OR i.width >= %(min_width)s::integer)
      AND (%(min_height)s::integer IS NULL OR i.height >= %(min_height)s::integer)
      AND (%(exclude_id)s::bigint IS NULL OR i.id <> %(exclude_id)s::bigint)
    ORDER BY i.embedding <=> %(q)s
    LIMIT %(k)s
) n
JOIN public.datasets d ON d.id = n.dataset_id
WHERE %(max_distance)s::float8 IS NULL OR n.distance <= %(max_distance)s::float8
ORDER BY n.distance, n.id
