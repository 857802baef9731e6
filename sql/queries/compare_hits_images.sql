SELECT i.id, d.root, i.path FROM public.images AS i JOIN public.datasets AS d ON d.id = i.dataset_id WHERE i.id = ANY(%(ids)s::bigint[])
