-- Full-text search over the captions (Store, --mode text|hybrid --target captions): best ts_rank first,
-- ties by id; the filters apply to the caption's image, which must be present.
SELECT c.id, c.text, c.image_id, i.path, d.root, d.name, i.split, ts_rank(c.tsv, t.q)::float8 AS score,
       i.taken_at
FROM (
    SELECT websearch_to_tsquery(e.text_search::regconfig, %(query)s::text) AS q FROM public.embedding_model e
) t
JOIN public.captions c ON c.tsv @@ t.q
JOIN public.images i ON i.id = c.image_id
JOIN public.datasets d ON d.id = i.dataset_id
WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
      AND (%(label)s::text IS NULL OR string_to_array(i.label, '|') @> ARRAY[%(label)s::text])
      AND (%(taken_after)s::timestamptz IS NULL OR i.taken_at >= %(taken_after)s::timestamptz)
      AND (%(taken_before)s::timestamptz IS NULL OR i.taken_at < %(taken_before)s::timestamptz)
      AND (%(min_width)s::integer IS NULL OR i.width >= %(min_width)s::integer)
      AND (%(min_height)s::integer IS NULL OR i.height >= %(min_height)s::integer)
ORDER BY score DESC, c.id
LIMIT %(k)s
