SELECT i.id, coalesce(c.embedding::vector, array_fill(0::real, ARRAY[vector_dims(i.embedding::vector)])::vector) AS embedding
FROM public.images AS i
LEFT JOIN LATERAL (
    SELECT embedding FROM public.captions WHERE image_id = i.id AND embedding IS NOT NULL ORDER BY id LIMIT 1
) AS c ON true
WHERE i.status = 'ok' AND i.embedding IS NOT NULL
ORDER BY i.id
