-- New and re-read images: insert, or replace the row of the same (dataset, path).
INSERT INTO public.images AS i
    (dataset_id, split, path, content_hash, size, mtime, width, height, source_id, label, status, error, embedding,
     taken_at)
SELECT DISTINCT ON (path)
    %(dataset_id)s, split, path, content_hash, size, mtime, width, height, source_id, label, status, error, embedding,
    to_timestamp(taken_at)
FROM ingest_image_stage
WHERE NOT touch
ORDER BY path
ON CONFLICT (dataset_id, path) DO UPDATE SET
    split = EXCLUDED.split, content_hash = EXCLUDED.content_hash, size = EXCLUDED.size, mtime = EXCLUDED.mtime,
    width = EXCLUDED.width, height = EXCLUDED.height, source_id = EXCLUDED.source_id, label = EXCLUDED.label,
    status = EXCLUDED.status, error = EXCLUDED.error, embedding = EXCLUDED.embedding,
    taken_at = EXCLUDED.taken_at, updated_at = now()
