-- The cosine distance of %(q)s to each caption of %(ids)s (hybrid hits found by words only).
SELECT c.id, c.embedding <=> %(q)s FROM public.captions c WHERE c.id = ANY(%(ids)s::bigint[])
