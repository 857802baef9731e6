SELECT i.id, d.name AS dataset, i.split, i.path, i.label
FROM public.images AS i JOIN public.datasets AS d ON d.id = i.dataset_id
WHERE i.status = 'ok' AND i.embedding IS NOT NULL
ORDER BY i.id
