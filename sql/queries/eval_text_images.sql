-- Full text for images through their captions, the query's own caption %(exclude_caption_id)s left out
-- (leave-one-caption-out: the other captions of its image may still find it). As queries/text_images, but
-- the caption's words are ORed (a caption is a sentence, not a query: all of its words rarely recur in
-- another caption); ts_rank still ranks captions sharing more of them first.
SELECT m.image_id
FROM (
    SELECT c.image_id, max(ts_rank(c.tsv, t.q)) AS score
    FROM (
        SELECT replace(plainto_tsquery(e.text_search::regconfig, %(query)s::text)::text, ' & ', ' | ')::tsquery AS q
        FROM public.embedding_model e
    ) t
    JOIN public.captions c ON c.tsv @@ t.q
    WHERE c.id <> %(exclude_caption_id)s::bigint
    GROUP BY c.image_id
) m
JOIN public.images i ON i.id = m.image_id
WHERE i.status = 'ok'
ORDER BY m.score DESC, m.image_id
LIMIT %(k)s
