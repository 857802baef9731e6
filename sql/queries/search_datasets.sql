-- Datasets with their searchable images per split (Store.datasets: the filters of `vstore serve`'s page).
SELECT d.name, d.format, i.split, count(i.id)
FROM public.datasets d
LEFT JOIN public.images i ON i.dataset_id = d.id AND i.status = 'ok'
GROUP BY d.name, d.format, i.split
ORDER BY d.name, i.split NULLS FIRST
