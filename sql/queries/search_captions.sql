-- The k captions nearest to %(q)s (text->text with a text vector, image->text with an image vector), on the
-- index of captions.embedding. Only captions of present images (status 'ok'); dataset/split filters apply
-- to the caption's image; iterative index scans keep going until k captions pass them, and the outer ORDER BY restores the exact order.
SELECT n.id, n.text, n.image_id, n.path, d.root, d.name, n.split, n.distance
FROM (
    SELECT c.id, c.text, c.image_id, i.path, i.split, i.dataset_id, c.embedding <=> %(q)s AS distance
    FROM public.captions c
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
      AND (%(dataset_id)s::bigint IS NULL OR i.dataset_id = %(dataset_id)s::bigint)
      AND (%(split)s::text IS NULL OR i.split = %(split)s::text)
    ORDER BY c.embedding <=> %(q)s
    LIMIT %(k)s
) n
JOIN public.datasets d ON d.id = n.dataset_id
ORDER BY n.distance, n.id
