SELECT path, embedding FROM public.images WHERE dataset_id = %(dataset_id)s AND path = ANY(%(paths)s) AND embedding IS NOT NULL
