-- The splits there are (in one dataset, or all): named by the error for an unknown --split.
SELECT DISTINCT split FROM public.images
WHERE split IS NOT NULL AND (%(d)s::bigint IS NULL OR dataset_id = %(d)s::bigint)
ORDER BY split
