SELECT id, image_id, text FROM public.captions WHERE embedding IS NOT NULL ORDER BY id
