-- vstore.hybrid_images(query, query_vector, k, rrf_k, filters..., max_distance): words and meaning
-- together. The best greatest(k, 50) images by full text (vstore.text_images) and by vector
-- (vstore.search_images_filtered) are fused by reciprocal rank: score = sum over the lists an image is in of
-- 1 / (rrf_k + its rank there), ranks from 1. Ties go to the better single rank, then the smaller id.
-- query_vector NULL (or a query with no words that match) leaves the other list alone, in its own order.
-- max_distance cuts the vector list only. text_rank/vector_rank are NULL where the image was not in that list.
CREATE OR REPLACE FUNCTION vstore.hybrid_images(
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
    id bigint, dataset_id bigint, path text, score double precision, text_rank bigint, vector_rank bigint,
    distance double precision, taken_at timestamptz
)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH by_text AS (
        SELECT x.id, row_number() OVER (ORDER BY x.score DESC, x.id) AS r
        FROM vstore.text_images(query, greatest(k, 50), dataset, label, taken_after, taken_before,
                                min_width, min_height) x
    ), by_vector AS (
        SELECT x.id, x.distance, row_number() OVER (ORDER BY x.distance, x.id) AS r
        FROM vstore.search_images_filtered(query_vector, greatest(k, 50), dataset, label, taken_after,
                                           taken_before, min_width, min_height, max_distance) x
        WHERE query_vector IS NOT NULL
    )
    SELECT i.id, i.dataset_id, i.path,
           coalesce(1.0 / (rrf_k + t.r), 0)::double precision + coalesce(1.0 / (rrf_k + v.r), 0)::double precision,
           t.r, v.r, v.distance, i.taken_at
    FROM by_text t
    FULL JOIN by_vector v ON v.id = t.id
    JOIN public.images i ON i.id = coalesce(t.id, v.id)
    ORDER BY 4 DESC, least(t.r, v.r), i.id
    LIMIT k
$$;
