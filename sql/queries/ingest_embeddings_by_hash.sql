-- Stored embeddings for content hashes: a renamed or copied file reuses one instead of being encoded.
SELECT DISTINCT ON (content_hash) content_hash, embedding, width, height
FROM public.images
WHERE content_hash = ANY(%(hashes)s) AND status IN ('ok', 'missing') AND embedding IS NOT NULL
ORDER BY content_hash, id
