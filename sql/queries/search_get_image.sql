-- One image with its dataset and captions (Store.get).
SELECT i.id, d.name, d.root, i.path, i.split, i.status, i.error, i.width, i.height, i.source_id, i.label,
       i.content_hash, i.embedding IS NOT NULL,
       coalesce((SELECT array_agg(c.text ORDER BY c.id) FROM public.captions c WHERE c.image_id = i.id), '{}')
FROM public.images i
JOIN public.datasets d ON d.id = i.dataset_id
WHERE i.id = %(id)s
