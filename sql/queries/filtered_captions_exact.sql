-- The k captions nearest to %(q)s whose image passes the filters, by an exact scan of the matching
-- captions (see filtered_images_exact).
SELECT n.id, n.text, n.image_id, n.path, d.root, d.name, n.split, n.distance, n.taken_at
FROM (
    SELECT c.id, c.text, c.image_id, i.path, i.split, i.dataset_id, i.taken_at, c.embedding <=> %(q)s AS distance
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
    OFFSET 0
) n
JOIN public.datasets d ON d.id = n.dataset_id
WHERE %(max_distance)s::float8 IS NULL OR n.distance <= %(max_distance)s::float8
ORDER BY n.distance, n.id
LIMIT %(k)s
