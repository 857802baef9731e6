-- Captions with no new vector yet, or whose text changed since theirs was computed.
SELECT c.id, c.text
FROM public.captions c
LEFT JOIN public.reembed_captions r ON r.id = c.id
WHERE r.id IS NULL OR r.source_hash IS DISTINCT FROM md5(c.text)
ORDER BY c.id
