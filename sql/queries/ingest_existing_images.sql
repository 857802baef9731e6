-- The stored state of one chunk of scanned paths (the ingest never loads the whole table).
SELECT path, id, size, mtime, content_hash, status, split, source_id, label
FROM public.images
WHERE dataset_id = %(dataset_id)s AND path = ANY(%(paths)s)
