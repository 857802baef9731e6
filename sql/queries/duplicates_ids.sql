-- The present images with a vector (in one dataset when %(dataset_id)s is set): whose neighbours the
-- duplicates search looks up, in id order.
SELECT i.id
FROM public.images i
WHERE i.status = 'ok' AND i.embedding IS NOT NULL
  AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
ORDER BY i.id
