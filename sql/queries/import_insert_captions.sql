INSERT INTO public.captions (image_id, source_id, text, embedding, origin)
SELECT i.id, m.caption_id, m.caption, v.text_embedding, 'imported'
FROM import_meta AS m
JOIN import_vectors AS v USING (ord)
JOIN public.images AS i ON i.dataset_id = %(dataset_id)s AND i.path = m.path
WHERE m.caption IS NOT NULL
ORDER BY m.ord
ON CONFLICT (image_id, source_id) DO NOTHING
