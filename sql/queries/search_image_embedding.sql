-- The stored embedding of one image (the query vector of `vstore search --like ID`).
SELECT i.embedding, i.status FROM public.images i WHERE i.id = %(id)s
