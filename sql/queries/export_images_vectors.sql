SELECT id, embedding::vector AS embedding FROM public.images WHERE status = 'ok' AND embedding IS NOT NULL ORDER BY id
