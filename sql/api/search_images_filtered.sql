-- vstore.search_images_filtered(q, k, filters..., max_distance): the k images nearest to q among those that
-- pass the filters (NULL = not filtered): dataset name, a label among the image's '|'-separated labels,
-- taken_at in [taken_after, taken_before), width/height at least min_width/min_height. A cutoff
-- (max_distance) keeps only hits at most that far, so the answer may hold fewer than k rows.
-- On the HNSW index: a selective filter needs SET hnsw.iterative_scan = relaxed_order (and a large enough
-- hnsw.max_scan_tuples) to find k rows; vstore's own searches choose an exact scan then (docs/search.md).
CREATE OR REPLACE FUNCTION vstore.search_images_filtered(
    q vector,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL,
    max_distance double precision DEFAULT NULL
)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT n.id, n.dataset_id, n.path, n.distance, n.taken_at
    FROM (
        SELECT i.id, i.dataset_id, i.path, i.taken_at, i.embedding <=> q AS distance
        FROM public.images i
        WHERE i.status = 'ok'
          AND (search_images_filtered.dataset IS NULL
               OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = search_images_filtered.dataset))
          AND (search_images_filtered.label IS NULL
               OR string_to_array(i.label, '|') @> ARRAY[search_images_filtered.label])
          AND (taken_after IS NULL OR i.taken_at >= taken_after)
          AND (taken_before IS NULL OR i.taken_at < taken_before)
          AND (min_width IS NULL OR i.width >= min_width)
          AND (min_height IS NULL OR i.height >= min_height)
        ORDER BY i.embedding <=> q
        LIMIT k
    ) n
    WHERE max_distance IS NULL OR n.distance <= max_distance
    ORDER BY n.distance, n.id
$$;
