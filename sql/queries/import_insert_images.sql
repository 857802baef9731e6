INSERT INTO public.images (dataset_id, path, source_id, status, embedding, origin)
SELECT %(dataset_id)s, m.path, m.source_id, 'ok', v.image_embedding, 'imported'
FROM import_meta AS m JOIN import_vectors AS v USING (ord)
ORDER BY m.ord
ON CONFLICT (dataset_id, path) DO NOTHING
