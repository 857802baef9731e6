"""SQL API: functions in schema `vstore`, as released on 2026-11-21

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Frozen: the statements are carried here as they were released, never read from today's sql/api/ files,
so editing sql/ cannot change what this revision does. Later changes to the API are new revisions.
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

STATEMENTS = (
    """-- vstore.text(t): the cached CLIP embedding of a text, for SQL clients that cannot run the model.
-- Texts enter the cache when the CLI searches them or through `vstore embed-text "..."`.
CREATE OR REPLACE FUNCTION vstore.text(t text) RETURNS vector
LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
DECLARE
    v vector;
BEGIN
    SELECT q.embedding INTO v FROM public.text_queries q WHERE q.text = t;
    IF v IS NULL THEN
        RAISE EXCEPTION 'vstore: no cached embedding for the text %', quote_literal(t)
            USING ERRCODE = 'no_data_found',
                  HINT = 'Add it with: vstore embed-text ' || quote_literal(t)
                         || ' (or search it once with vstore search), then run this query again.';
    END IF;
    RETURN v;
END
$$;
""",
    """-- vstore.search_images(q, k): the k images nearest to q by cosine distance, on the HNSW index.
-- A plain SQL function (no SET clause, not STRICT) so PostgreSQL inlines it and the index is used.
CREATE OR REPLACE FUNCTION vstore.search_images(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> q
    FROM public.images i
    WHERE i.status = 'ok'
    ORDER BY i.embedding <=> q
    LIMIT k
$$;
""",
    """-- vstore.search_captions(q, k): the k captions nearest to q (text->text, or image->text with an image vector).
CREATE OR REPLACE FUNCTION vstore.search_captions(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> q
    FROM public.captions c
    ORDER BY c.embedding <=> q
    LIMIT k
$$;
""",
    """-- vstore.similar_images(image_id, k): the k images nearest to a stored image, the image itself excluded.
CREATE OR REPLACE FUNCTION vstore.similar_images(image_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = image_id)
    FROM public.images i
    WHERE i.status = 'ok' AND i.id <> image_id
    ORDER BY i.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = image_id)
    LIMIT k
$$;
""",
    """-- vstore.captions_for_image(image_id, k): image->text, the k captions nearest to a stored image.
CREATE OR REPLACE FUNCTION vstore.captions_for_image(image_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    FROM public.captions c
    ORDER BY c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    LIMIT k
$$;
""",
    """-- vstore.images_for_caption(caption_id, k): text->image from a stored caption, the k nearest images.
CREATE OR REPLACE FUNCTION vstore.images_for_caption(caption_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> (SELECT c.embedding FROM public.captions c WHERE c.id = caption_id)
    FROM public.images i
    WHERE i.status = 'ok'
    ORDER BY i.embedding <=> (SELECT c.embedding FROM public.captions c WHERE c.id = caption_id)
    LIMIT k
$$;
""",
)


def upgrade() -> None:
    op.execute("CREATE SCHEMA IF NOT EXISTS vstore")
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS vstore CASCADE")
