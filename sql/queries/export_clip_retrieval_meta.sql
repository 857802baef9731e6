SELECT i.id, d.root, i.path, c.text AS caption, i.source_id, d.name AS dataset
FROM public.images AS i
JOIN public.datasets AS d ON d.id = i.dataset_id
LEFT JOIN LATERAL (
    SELECT text FROM public.captions WHERE image_id = i.id AND embedding IS NOT NULL ORDER BY id LIMIT 1
) AS c ON true
WHERE i.status = 'ok' AND i.embedding IS NOT NULL
ORDER BY i.id
