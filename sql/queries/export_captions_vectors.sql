SELECT c.id, c.embedding::vector AS embedding FROM public.captions c JOIN public.images i ON i.id = c.image_id WHERE i.status = 'ok' AND c.embedding IS NOT NULL ORDER BY c.id
