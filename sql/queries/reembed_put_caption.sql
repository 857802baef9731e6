INSERT INTO public.reembed_captions (id, source_hash, embedding) VALUES (%s, md5(%s), %s)
ON CONFLICT (id) DO UPDATE SET source_hash = EXCLUDED.source_hash, embedding = EXCLUDED.embedding
