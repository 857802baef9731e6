-- Cached text embeddings (text_queries) for a list of texts, of the model the caller encodes with only.
SELECT q.text, q.embedding FROM public.text_queries q
WHERE q.text = ANY(%(texts)s::text[]) AND q.model = %(model)s
