-- vstore.hybrid_captions(query, query_vector, k, rrf_k, filters..., max_distance): hybrid search for
-- captions directly: vstore.text_captions and vstore.search_captions_filtered fused by reciprocal rank, as
-- vstore.hybrid_images does for images.
CREATE OR REPLACE FUNCTION vstore.hybrid_captions(
    query text,
    query_vector vector,
    k integer DEFAULT 10,
    rrf_k integer DEFAULT 60,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL,
    max_distance double precision DEFAULT NULL
)
RETURNS TABLE (
    id bigint, image_id bigint, text text, score double precision, text_rank bigint, vector_rank bigint,
    distance double precision, taken_at timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH by_text AS (
        SELECT x.id, row_number() OVER (ORDER BY x.score DESC, x.id) AS r
        FROM vstore.text_captions(query, greatest(k, 50), dataset, label, taken_after, taken_before,
                                  min_width, min_height) x
    ), by_vector AS (
        SELECT x.id, x.distance, row_number() OVER (ORDER BY x.distance, x.id) AS r
        FROM vstore.search_captions_filtered(query_vector, greatest(k, 50), dataset, label, taken_after,
                                             taken_before, min_width, min_height, max_distance) x
        WHERE query_vector IS NOT NULL
    )
    SELECT c.id, c.image_id, c.text,
           coalesce(1.0 / (rrf_k + t.r), 0)::double precision + coalesce(1.0 / (rrf_k + v.r), 0)::double precision,
           t.r, v.r, v.distance, i.taken_at
    FROM by_text t
    FULL JOIN by_vector v ON v.id = t.id
    JOIN public.captions c ON c.id = coalesce(t.id, v.id)
    JOIN public.images i ON i.id = c.image_id
    ORDER BY 4 DESC, least(t.r, v.r), c.id
    LIMIT k
$$;
