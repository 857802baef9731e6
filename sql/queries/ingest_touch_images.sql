-- Images whose content is unchanged: refresh metadata and status, keep the stored embedding.
UPDATE public.images AS i SET
    split = s.split, size = coalesce(s.size, i.size), mtime = coalesce(s.mtime, i.mtime),
    source_id = s.source_id, label = s.label,
    taken_at = coalesce(i.taken_at, to_timestamp(s.taken_at)), status = 'ok', error = NULL, updated_at = now()
FROM ingest_image_stage s
WHERE s.touch AND i.dataset_id = %(dataset_id)s AND i.path = s.path
