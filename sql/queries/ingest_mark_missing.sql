-- Rows of the scanned dataset (and splits) whose file this scan did not find: kept, but marked missing.
UPDATE public.images AS i SET status = 'missing', updated_at = now()
WHERE i.dataset_id = %(dataset_id)s
  AND i.status <> 'missing'
  AND (%(splits)s::text[] IS NULL OR i.split = ANY(%(splits)s::text[]))
  AND NOT EXISTS (SELECT 1 FROM ingest_seen s WHERE s.path = i.path)
