-- The planner's estimate of the captions whose image passes the filters (EXPLAIN of this).
SELECT 1
FROM public.captions c
JOIN public.images i ON i.id = c.image_id
WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
      AND (%(label)s::text IS NULL OR string_to_array(i.label, '|') @> ARRAY[%(label)s::text])
      AND (%(taken_after)s::timestamptz IS NULL OR i.taken_at >= %(taken_after)s::timestamptz)
      AND (%(taken_before)s::timestamptz IS NULL OR i.taken_at < %(taken_before)s::timestamptz)
      AND (%(min_width)s::integer IS NULL OR i.width >= %(min_width)s::integer)
      AND (%(min_height)s::integer IS NULL OR i.height >= %(min_height)s::integer)
