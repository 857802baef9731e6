-- Store (or refresh) one text's embedding in the cache that vstore.text() reads, naming its model: the
-- foreign key refuses any model but the recorded one (a process that missed a model switch).
INSERT INTO public.text_queries (text, embedding, model) VALUES (%(text)s, %(embedding)s, %(model)s)
ON CONFLICT (text) DO UPDATE SET embedding = EXCLUDED.embedding, model = EXCLUDED.model
RETURNING id
