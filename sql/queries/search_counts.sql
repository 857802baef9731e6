-- Rows per table (Store.counts; the keys are COUNTED_TABLES in search/records.py, in this order).
SELECT (SELECT count(*) FROM public.datasets),
       (SELECT count(*) FROM public.images),
       (SELECT count(*) FROM public.captions),
       (SELECT count(*) FROM public.text_queries)
