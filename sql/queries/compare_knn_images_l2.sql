SELECT id, embedding <-> %(q)b AS distance FROM public.images WHERE status = 'ok' ORDER BY embedding <-> %(q)b LIMIT %(k)b
