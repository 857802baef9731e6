SELECT id, embedding <-> %(q)b AS distance FROM public.captions ORDER BY embedding <-> %(q)b LIMIT %(k)b
