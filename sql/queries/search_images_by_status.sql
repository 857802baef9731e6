-- Images per status (ok, failed, missing): Store.counts.
SELECT status, count(*) FROM public.images GROUP BY status
