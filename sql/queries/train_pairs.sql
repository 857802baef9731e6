-- Every searchable image with its captions, for fine-tuning: one row per caption, in image then caption order.
SELECT i.id, d.root, i.path, i.split, d.name, c.id, c.text
FROM public.images i
JOIN public.datasets d ON d.id = i.dataset_id
JOIN public.captions c ON c.image_id = i.id
WHERE i.status = 'ok'
ORDER BY i.id, c.id
