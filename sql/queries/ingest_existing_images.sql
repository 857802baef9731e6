-- The stored state of one chunk of scanned paths (the ingest never loads the whole table); `embedded`:
-- a row without a vector (reembed clears those of missing images) is encoded again, never just touched.
SELECT path, id, size, mtime, content_hash, status, split, source_id, label, embedding IS NOT NULL AS embedded
FROM public.images
WHERE dataset_id = %(dataset_id)s AND path = ANY(%(paths)s)
