SELECT c.id, c.image_id, c.text FROM public.captions AS c WHERE c.id = ANY(%(ids)s::bigint[])
