SELECT id, embedding FROM public.captions WHERE id = ANY(%(ids)s::bigint[])
