-- The stored state of one chunk of scanned paths (the ingest never loads the whole table); `embedded`:
-- a row without a vector (reembed clears those of missing images) is encoded again, never just touched.
-- imported_vector: a vector imported from elsewhere (`vstore import`) for a file never read here; the
-- first ingest that reads the file adopts it instead of encoding.
SELECT path, id, size, mtime, content_hash, status, split, source_id, label, embedding IS NOT NULL AS embedded,
       (origin = 'imported' AND embedding IS NOT NULL AND content_hash IS NULL) AS imported_vector
FROM public.images
WHERE dataset_id = %(dataset_id)s AND path = ANY(%(paths)s)
