-- Cached text embeddings (text_queries) for a list of texts.
SELECT q.text, q.embedding FROM public.text_queries q WHERE q.text = ANY(%(texts)s::text[])
