-- Full-text search for images through their captions (Store, --mode text|hybrid): an image scores its best
-- caption's ts_rank for %(query)s (web-search syntax, the configuration chosen at init); the filters as in
-- filtered_images; best first, ties by id. The SQL API's vstore.text_images does the same for SQL clients.
SELECT i.id, i.path, d.root, d.name, i.split, m.score, i.taken_at
FROM (
    SELECT c.image_id, max(ts_rank(c.tsv, t.q))::float8 AS score
    FROM (
        SELECT websearch_to_tsquery(e.text_search::regconfig, %(query)s::text) AS q
        FROM public.embedding_model e
    ) t
    JOIN public.captions c ON c.tsv @@ t.q
    GROUP BY c.image_id
) m
JOIN public.images i ON i.id = m.image_id
JOIN public.datasets d ON d.id = i.dataset_id
WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
      AND (%(label)s::text IS NULL OR string_to_array(i.label, '|') @> ARRAY[%(label)s::text])
      AND (%(taken_after)s::timestamptz IS NULL OR i.taken_at >= %(taken_after)s::timestamptz)
      AND (%(taken_before)s::timestamptz IS NULL OR i.taken_at < %(taken_before)s::timestamptz)
      AND (%(min_width)s::integer IS NULL OR i.width >= %(min_width)s::integer)
      AND (%(min_height)s::integer IS NULL OR i.height >= %(min_height)s::integer)
      AND (%(exclude_id)s::bigint IS NULL OR i.id <> %(exclude_id)s::bigint)
ORDER BY m.score DESC, i.id
LIMIT %(k)s
