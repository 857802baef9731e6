-- Captions of this batch, attached to their image rows by path; replaces a caption with the same source id.
INSERT INTO public.captions AS c (image_id, source_id, text, embedding)
SELECT DISTINCT ON (i.id, s.source_id) i.id, s.source_id, s.text, s.embedding
FROM ingest_caption_stage s
JOIN public.images i ON i.dataset_id = %(dataset_id)s AND i.path = s.path
ORDER BY i.id, s.source_id
ON CONFLICT (image_id, source_id) DO UPDATE SET text = EXCLUDED.text, embedding = EXCLUDED.embedding
