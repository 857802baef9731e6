-- vstore.text_images(query, k, filters...): full-text search for images through their captions (no model
-- needed): an image scores its best caption's ts_rank; best first, ties by id. Images without captions
-- are not found by words. Filters as in vstore.search_images_filtered.
CREATE OR REPLACE FUNCTION vstore.text_images(
    query text,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL
)
RETURNS TABLE (id bigint, dataset_id bigint, path text, score double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, m.score, i.taken_at
    FROM (
        SELECT c.image_id, max(ts_rank(c.tsv, t.q))::double precision AS score
        FROM (
            SELECT websearch_to_tsquery(e.text_search::regconfig, query) AS q FROM public.embedding_model e
        ) t
        JOIN public.captions c ON c.tsv @@ t.q
        GROUP BY c.image_id
    ) m
    JOIN public.images i ON i.id = m.image_id
    WHERE i.status = 'ok'
      AND (text_images.dataset IS NULL
           OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = text_images.dataset))
      AND (text_images.label IS NULL OR string_to_array(i.label, '|') @> ARRAY[text_images.label])
      AND (taken_after IS NULL OR i.taken_at >= taken_after)
      AND (taken_before IS NULL OR i.taken_at < taken_before)
      AND (min_width IS NULL OR i.width >= min_width)
      AND (min_height IS NULL OR i.height >= min_height)
    ORDER BY m.score DESC, i.id
    LIMIT k
$$;
