-- The cosine distance of %(q)s to each image of %(ids)s (hybrid hits found by words only).
SELECT i.id, i.embedding <=> %(q)s FROM public.images i WHERE i.id = ANY(%(ids)s::bigint[])
