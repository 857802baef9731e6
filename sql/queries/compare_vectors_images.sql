SELECT id, embedding FROM public.images WHERE id = ANY(%(ids)s::bigint[])
