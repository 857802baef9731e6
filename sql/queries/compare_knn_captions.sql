SELECT c.id, c.embedding <=> %(q)b AS distance FROM public.captions c JOIN public.images i ON i.id = c.image_id WHERE i.status = 'ok' ORDER BY c.embedding <=> %(q)b LIMIT %(k)b
