-- The cache rows (id) of texts already in text_queries (`vstore embed-text` reports them as cached).
SELECT text, id FROM public.text_queries WHERE text = ANY(%(texts)s::text[]) AND model = %(model)s
