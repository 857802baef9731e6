-- What the exported caption vectors are, cheaply (see export_identity_images), over exactly the rows
-- export_captions_vectors reads.
SELECT count(*), coalesce(max(c.id), 0), coalesce(bit_xor(hashint8(c.id) # hashint8(c.xmin::text::bigint)), 0)
FROM public.captions c JOIN public.images i ON i.id = c.image_id
WHERE i.status = 'ok' AND c.embedding IS NOT NULL
