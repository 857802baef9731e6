-- Captions already stored for one chunk of scanned paths: to embed only new or changed ones, and to delete
-- the ones the source no longer has.
SELECT i.path, c.source_id, c.id, c.text, c.embedding IS NOT NULL
FROM public.captions c
JOIN public.images i ON i.id = c.image_id
WHERE i.dataset_id = %(dataset_id)s AND i.path = ANY(%(paths)s)
