-- Searchable images with no new vector yet, or whose file changed since theirs was computed.
SELECT i.id, d.root, i.path, i.content_hash
FROM public.images i
JOIN public.datasets d ON d.id = i.dataset_id
LEFT JOIN public.reembed_images r ON r.id = i.id
WHERE i.status = 'ok' AND (r.id IS NULL OR r.source_hash IS DISTINCT FROM i.content_hash)
ORDER BY i.id
