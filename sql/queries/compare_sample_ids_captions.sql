SELECT id FROM public.captions WHERE embedding IS NOT NULL ORDER BY id
