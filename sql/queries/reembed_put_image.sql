INSERT INTO public.reembed_images (id, source_hash, embedding) VALUES (%s, %s, %s)
ON CONFLICT (id) DO UPDATE SET source_hash = EXCLUDED.source_hash, embedding = EXCLUDED.embedding
