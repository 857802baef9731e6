-- How many images pass the filters, counting at most %(limit)s (the plan chooser only needs to know
-- whether the matching rows are few enough for an exact scan).
SELECT count(*) FROM (
    SELECT 1
    FROM public.images i
    WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
      AND (%(label)s::text IS NULL OR string_to_array(i.label, '|') @> ARRAY[%(label)s::text])
      AND (%(taken_after)s::timestamptz IS NULL OR i.taken_at >= %(taken_after)s::timestamptz)
      AND (%(taken_before)s::timestamptz IS NULL OR i.taken_at < %(taken_before)s::timestamptz)
      AND (%(min_width)s::integer IS NULL OR i.width >= %(min_width)s::integer)
      AND (%(min_height)s::integer IS NULL OR i.height >= %(min_height)s::integer)
    LIMIT %(limit)s
) m
