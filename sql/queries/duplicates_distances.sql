-- The cosine distance of each group member to its keeper (pairs given as two parallel arrays).
SELECT m.id, m.embedding <=> k.embedding
FROM unnest(%(members)s::bigint[], %(keepers)s::bigint[]) AS p(member, keeper)
JOIN public.images m ON m.id = p.member
JOIN public.images k ON k.id = p.keeper
