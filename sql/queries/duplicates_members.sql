-- What the keeper choice and the listing need of each image in a duplicate group.
SELECT i.id, d.root, i.path, i.width, i.height, i.size, i.taken_at, d.name
FROM public.images i
JOIN public.datasets d ON d.id = i.dataset_id
WHERE i.id = ANY(%(ids)s::bigint[])
