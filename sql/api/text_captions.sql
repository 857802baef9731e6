-- vstore.text_captions(query, k, filters...): full-text search over the captions (no model needed): the
-- k captions that match `query` (web-search syntax: words, "a phrase", -not, or), best ts_rank first, with
-- the text search configuration chosen at `vstore init` (embedding_model.text_search). Filters as in
-- vstore.search_images_filtered, applied to the caption's image; only captions of present images.
CREATE OR REPLACE FUNCTION vstore.text_captions(
    query text,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL
)
RETURNS TABLE (id bigint, image_id bigint, text text, score double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, ts_rank(c.tsv, t.q)::double precision AS score, i.taken_at
    FROM (
        SELECT websearch_to_tsquery(m.text_search::regconfig, query) AS q FROM public.embedding_model m
    ) t
    JOIN public.captions c ON c.tsv @@ t.q
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
      AND (text_captions.dataset IS NULL
           OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = text_captions.dataset))
      AND (text_captions.label IS NULL OR string_to_array(i.label, '|') @> ARRAY[text_captions.label])
      AND (taken_after IS NULL OR i.taken_at >= taken_after)
      AND (taken_before IS NULL OR i.taken_at < taken_before)
      AND (min_width IS NULL OR i.width >= min_width)
      AND (min_height IS NULL OR i.height >= min_height)
    ORDER BY score DESC, c.id
    LIMIT k
$$;
