"""Search as people search: full text, filters, capture dates (issue 22)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04

- embedding_model.text_search: the text search configuration chosen at `vstore init --text-search`
  (default english; simple keeps every word as written, no stemming, no stop words).
- captions.tsv: a generated tsvector of the caption text in that configuration, with a GIN index.
- images.taken_at: when the photo was taken: the EXIF capture date when the file has one, else the file's
  mtime. Ingest records it; existing rows are backfilled here from their stored mtime (reading EXIF would
  need the files, which a migration must not depend on; a file that changes is re-read by the next ingest
  and then gets its EXIF date). A btree index serves date filters and date order.
- A GIN index on the image's labels (string_to_array(label, '|')) serves the label filter.
- SQL functions: text_images, text_captions, search_images_filtered, search_captions_filtered,
  hybrid_images, hybrid_captions (filter arguments; reciprocal rank fusion for the hybrids). Their vector
  comparisons are against halfvec where the database stores halfvec, as revision 0004 does.
- The reader role (if it exists) is granted EXECUTE on the new functions again (default privileges cover
  it when the same owner runs the migration; this also covers a database restored under another owner).

The backfill updates every image row; on a large table each such update would insert into the vector
index again (one graph insertion per row), so above BACKFILL_REBUILD_ROWS rows the images' vector indexes
are dropped first and rebuilt from their own definitions afterwards, all in this migration's transaction.

Frozen: the statements are carried here, never read from sql/, like 0002.
"""

import re

import sqlalchemy as sa
from alembic import context, op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TEXT_SEARCH_DEFAULT = "english"
BACKFILL_REBUILD_ROWS = 10_000
NEW_FUNCTIONS = (
    "hybrid_images(text, vector, integer, integer, text, text, timestamptz, timestamptz, integer, integer, "
    "double precision)",
    "hybrid_captions(text, vector, integer, integer, text, text, timestamptz, timestamptz, integer, integer, "
    "double precision)",
    "text_images(text, integer, text, text, timestamptz, timestamptz, integer, integer)",
    "text_captions(text, integer, text, text, timestamptz, timestamptz, integer, integer)",
    "search_images_filtered(vector, integer, text, text, timestamptz, timestamptz, integer, integer, "
    "double precision)",
    "search_captions_filtered(vector, integer, text, text, timestamptz, timestamptz, integer, integer, "
    "double precision)",
)

# In dependency order: the hybrids call the others. {q}: the query as the column's type.
FUNCTIONS = (
    """-- vstore.search_images_filtered(q, k, filters..., max_distance): the k images nearest to q among those that
-- pass the filters (NULL = not filtered): dataset name, a label among the image's '|'-separated labels,
-- taken_at in [taken_after, taken_before), width/height at least min_width/min_height. A cutoff
-- (max_distance) keeps only hits at most that far, so the answer may hold fewer than k rows.
-- On the HNSW index: a selective filter needs SET hnsw.iterative_scan = relaxed_order (and a large enough
-- hnsw.max_scan_tuples) to find k rows; vstore's own searches choose an exact scan then (docs/search.md).
CREATE OR REPLACE FUNCTION vstore.search_images_filtered(
    q vector,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL,
    max_distance double precision DEFAULT NULL
)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT n.id, n.dataset_id, n.path, n.distance, n.taken_at
    FROM (
        SELECT i.id, i.dataset_id, i.path, i.taken_at, i.embedding <=> {q} AS distance
        FROM public.images i
        WHERE i.status = 'ok'
          AND (search_images_filtered.dataset IS NULL
               OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = search_images_filtered.dataset))
          AND (search_images_filtered.label IS NULL
               OR string_to_array(i.label, '|') @> ARRAY[search_images_filtered.label])
          AND (taken_after IS NULL OR i.taken_at >= taken_after)
          AND (taken_before IS NULL OR i.taken_at < taken_before)
          AND (min_width IS NULL OR i.width >= min_width)
          AND (min_height IS NULL OR i.height >= min_height)
        ORDER BY i.embedding <=> {q}
        LIMIT k
    ) n
    WHERE max_distance IS NULL OR n.distance <= max_distance
    ORDER BY n.distance, n.id
$$;
""",
    """-- vstore.search_captions_filtered(q, k, filters..., max_distance): the k captions nearest to q whose image
-- is present and passes the filters (the same as vstore.search_images_filtered's, applied to the caption's
-- image); hits farther than max_distance are left out.
CREATE OR REPLACE FUNCTION vstore.search_captions_filtered(
    q vector,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL,
    max_distance double precision DEFAULT NULL
)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT n.id, n.image_id, n.text, n.distance, n.taken_at
    FROM (
        SELECT c.id, c.image_id, c.text, i.taken_at, c.embedding <=> {q} AS distance
        FROM public.captions c
        JOIN public.images i ON i.id = c.image_id
        WHERE i.status = 'ok'
          AND (search_captions_filtered.dataset IS NULL
               OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = search_captions_filtered.dataset))
          AND (search_captions_filtered.label IS NULL
               OR string_to_array(i.label, '|') @> ARRAY[search_captions_filtered.label])
          AND (taken_after IS NULL OR i.taken_at >= taken_after)
          AND (taken_before IS NULL OR i.taken_at < taken_before)
          AND (min_width IS NULL OR i.width >= min_width)
          AND (min_height IS NULL OR i.height >= min_height)
        ORDER BY c.embedding <=> {q}
        LIMIT k
    ) n
    WHERE max_distance IS NULL OR n.distance <= max_distance
    ORDER BY n.distance, n.id
$$;
""",
    """-- vstore.text_images(query, k, filters...): full-text search for images through their captions (no model
-- needed): an image scores its best caption's ts_rank; best first, ties by id. Images without captions
-- are not found by words. Filters as in vstore.search_images_filtered.
CREATE OR REPLACE FUNCTION vstore.text_images(
    query text,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL
)
RETURNS TABLE (id bigint, dataset_id bigint, path text, score double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, m.score, i.taken_at
    FROM (
        SELECT c.image_id, max(ts_rank(c.tsv, t.q))::double precision AS score
        FROM (
            SELECT websearch_to_tsquery(e.text_search::regconfig, query) AS q FROM public.embedding_model e
        ) t
        JOIN public.captions c ON c.tsv @@ t.q
        GROUP BY c.image_id
    ) m
    JOIN public.images i ON i.id = m.image_id
    WHERE i.status = 'ok'
      AND (text_images.dataset IS NULL
           OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = text_images.dataset))
      AND (text_images.label IS NULL OR string_to_array(i.label, '|') @> ARRAY[text_images.label])
      AND (taken_after IS NULL OR i.taken_at >= taken_after)
      AND (taken_before IS NULL OR i.taken_at < taken_before)
      AND (min_width IS NULL OR i.width >= min_width)
      AND (min_height IS NULL OR i.height >= min_height)
    ORDER BY m.score DESC, i.id
    LIMIT k
$$;
""",
    """-- vstore.text_captions(query, k, filters...): full-text search over the captions (no model needed): the
-- k captions that match `query` (web-search syntax: words, "a phrase", -not, or), best ts_rank first, with
-- the text search configuration chosen at `vstore init` (embedding_model.text_search). Filters as in
-- vstore.search_images_filtered, applied to the caption's image; only captions of present images.
CREATE OR REPLACE FUNCTION vstore.text_captions(
    query text,
    k integer DEFAULT 10,
    dataset text DEFAULT NULL,
    label text DEFAULT NULL,
    taken_after timestamptz DEFAULT NULL,
    taken_before timestamptz DEFAULT NULL,
    min_width integer DEFAULT NULL,
    min_height integer DEFAULT NULL
)
RETURNS TABLE (id bigint, image_id bigint, text text, score double precision, taken_at timestamptz)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, ts_rank(c.tsv, t.q)::double precision AS score, i.taken_at
    FROM (
        SELECT websearch_to_tsquery(m.text_search::regconfig, query) AS q FROM public.embedding_model m
    ) t
    JOIN public.captions c ON c.tsv @@ t.q
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
      AND (text_captions.dataset IS NULL
           OR i.dataset_id = (SELECT d.id FROM public.datasets d WHERE d.name = text_captions.dataset))
      AND (text_captions.label IS NULL OR string_to_array(i.label, '|') @> ARRAY[text_captions.label])
      AND (taken_after IS NULL OR i.taken_at >= taken_after)
      AND (taken_before IS NULL OR i.taken_at < taken_before)
      AND (min_width IS NULL OR i.width >= min_width)
      AND (min_height IS NULL OR i.height >= min_height)
    ORDER BY score DESC, c.id
    LIMIT k
$$;
""",
    """-- vstore.hybrid_images(query, query_vector, k, rrf_k, filters..., max_distance): words and meaning
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
""",
    """-- vstore.hybrid_captions(query, query_vector, k, rrf_k, filters..., max_distance): hybrid search for
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
""",
)


def _text_search(conn: sa.Connection) -> str:
    """The configuration `vstore init --text-search` asked for (default english), checked to exist."""
    name = context.config.attributes.get("text_search") or TEXT_SEARCH_DEFAULT
    if not re.fullmatch(r"[a-z_]{1,63}", name):
        raise ValueError(f"text search configuration {name!r}: use a name such as english or simple")
    found = conn.execute(
        sa.text("SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_ts_config WHERE cfgname = :c)"), {"c": name}
    ).scalar()
    if not found:
        raise ValueError(f"PostgreSQL has no text search configuration {name!r}; try english or simple")
    return name


def _backfill_taken_at(conn: sa.Connection) -> None:
    rows = conn.execute(sa.text("SELECT count(*) FROM public.images WHERE mtime IS NOT NULL")).scalar() or 0
    vector_indexes: list[tuple[str, str]] = []
    if rows > BACKFILL_REBUILD_ROWS:
        vector_indexes = [
            (r[0], r[1])
            for r in conn.execute(
                sa.text(
                    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                    "AND tablename = 'images' AND (indexdef LIKE '%USING hnsw%' OR indexdef LIKE '%USING ivfflat%')"
                )
            ).fetchall()
        ]
        for name, _ in vector_indexes:
            op.execute(sa.text(f"DROP INDEX public.{conn.dialect.identifier_preparer.quote(name)}"))
    op.execute("UPDATE public.images SET taken_at = to_timestamp(mtime) WHERE mtime IS NOT NULL")
    for _, definition in vector_indexes:
        op.execute(sa.text(definition))


def upgrade() -> None:
    conn = op.get_bind()
    config = _text_search(conn)
    op.add_column(
        "embedding_model",
        sa.Column("text_search", sa.Text, nullable=False, server_default=TEXT_SEARCH_DEFAULT),
    )
    op.execute(sa.text("UPDATE public.embedding_model SET text_search = :c").bindparams(c=config))
    # config is checked above (a plain name PostgreSQL knows); a generated column needs it as a literal
    op.execute(
        "ALTER TABLE public.captions ADD COLUMN tsv tsvector "
        f"GENERATED ALWAYS AS (to_tsvector('{config}'::regconfig, text)) STORED"
    )
    op.execute("CREATE INDEX captions_tsv_gin ON public.captions USING gin (tsv)")
    op.add_column("images", sa.Column("taken_at", sa.DateTime(timezone=True)))
    _backfill_taken_at(conn)
    op.execute("CREATE INDEX images_taken_at_idx ON public.images (taken_at)")
    op.execute("CREATE INDEX images_labels_gin ON public.images USING gin (string_to_array(label, '|'))")
    storage = conn.execute(sa.text("SELECT storage FROM public.embedding_model")).scalar() or "vector"
    query = "q::halfvec" if storage == "halfvec" else "q"
    for statement in FUNCTIONS:
        op.execute(sa.text(statement.replace("{q}", query)))
    op.execute(
        """DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'vstore_reader') THEN
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA vstore TO vstore_reader;
        GRANT SELECT ON ALL TABLES IN SCHEMA public TO vstore_reader;
    END IF;
END
$$"""
    )


def downgrade() -> None:
    for signature in NEW_FUNCTIONS:
        op.execute(f"DROP FUNCTION IF EXISTS vstore.{signature}")
    op.execute("DROP INDEX IF EXISTS public.images_labels_gin")
    op.execute("DROP INDEX IF EXISTS public.images_taken_at_idx")
    op.drop_column("images", "taken_at")
    op.execute("DROP INDEX IF EXISTS public.captions_tsv_gin")
    op.drop_column("captions", "tsv")
    op.drop_column("embedding_model", "text_search")
