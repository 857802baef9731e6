SELECT id, embedding::vector AS embedding FROM public.captions WHERE embedding IS NOT NULL ORDER BY id
