-- Pairs among the images %(ids)s within %(max_distance)s of each other (search --collapse-duplicates
-- keeps one hit per group of them).
SELECT a.id, b.id
FROM public.images a
JOIN public.images b ON b.id = ANY(%(ids)s::bigint[]) AND a.id < b.id
WHERE a.id = ANY(%(ids)s::bigint[]) AND (a.embedding <=> b.embedding) <= %(max_distance)s::float8
