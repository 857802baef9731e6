-- A dataset's id by name (the --dataset filter).
SELECT d.id FROM public.datasets d WHERE d.name = %(name)s
