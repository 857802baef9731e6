-- What the exported image vectors are, cheaply: count, highest id, and an XOR of per-row hashes of id and
-- xmin (which changes whenever a row is updated), over exactly the rows export_images_vectors reads.
SELECT count(*), coalesce(max(id), 0), coalesce(bit_xor(hashint8(id) # hashint8(xmin::text::bigint)), 0)
FROM public.images WHERE status = 'ok' AND embedding IS NOT NULL
