-- vstore.search_captions_filtered(q, k, filters..., max_distance): the k captions nearest to q whose image
-- is present and passes the filters (the same as vstore.search_images_filtered's, applied to the caption's
-- image); hits farther than max_distance are left out.
CREATE OR REPLACE FUNCTION vstore.search_captions_filtered(
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
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT n.id, n.image_id, n.text, n.distance, n.taken_at
    FROM (
        SELECT c.id, c.image_id, c.text, i.taken_at, c.embedding <=> q AS distance
        FROM public.captions c
        JOIN public.images i ON i.id = c.image_id
        WHERE i.status = 'ok'
          AND (search_captions_filtered.dataset IS NULL
               OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = search_captions_filtered.dataset))
          AND (search_captions_filtered.label IS NULL
               OR string_to_array(i.label, '|') @> ARRAY[search_captions_filtered.label])
          AND (taken_after IS NULL OR i.taken_at >= taken_after)
          AND (taken_before IS NULL OR i.taken_at < taken_before)
          AND (min_width IS NULL OR i.width >= min_width)
          AND (min_height IS NULL OR i.height >= min_height)
        ORDER BY c.embedding <=> q
        LIMIT k
    ) n
    WHERE max_distance IS NULL OR n.distance <= max_distance
    ORDER BY n.distance, n.id
$$;
