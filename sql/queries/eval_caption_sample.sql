-- Leave-one-caption-out evaluation (vstore eval --mode): a seeded sample of captions of present images
-- (in one dataset when %(dataset_id)s is set): id, text, image id, embedding.
SELECT c.id, c.text, c.image_id, c.embedding
FROM public.captions c
JOIN public.images i ON i.id = c.image_id
WHERE i.status = 'ok' AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
ORDER BY md5(c.id::text || %(seed)s::text)
LIMIT %(limit)s
