-- Store (or refresh) one text's embedding in the cache that vstore.text() reads.
INSERT INTO public.text_queries (text, embedding) VALUES (%(text)s, %(embedding)s)
ON CONFLICT (text) DO UPDATE SET embedding = EXCLUDED.embedding
RETURNING id
