"""Present rows only, and dataset identity: search_captions and captions_for_image return only captions of
images that are present (status 'ok'); datasets get a `source` column (the resolved folder or manifest file
that identifies a dataset; NULL on older rows means `root`).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22

Frozen like 0002: the function bodies are carried here, never read from today's sql/api/ files.
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

STATEMENTS = (
    """-- vstore.search_captions(q, k): the k captions nearest to q (text->text, or image->text with an image vector),
-- only captions of images that are present (status 'ok'). Filtered HNSW scans: with many missing images,
-- SET hnsw.iterative_scan = relaxed_order (pgvector >= 0.8) so the scan keeps going until k rows pass.
CREATE OR REPLACE FUNCTION vstore.search_captions(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> q
    FROM public.captions c
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
    ORDER BY c.embedding <=> q
    LIMIT k
$$;
""",
    """-- vstore.captions_for_image(image_id, k): image->text, the k captions nearest to a stored image, only
-- captions of images that are present (status 'ok'; see search_captions about iterative scans).
CREATE OR REPLACE FUNCTION vstore.captions_for_image(image_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    FROM public.captions c
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
    ORDER BY c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    LIMIT k
$$;
""",
)

# The 0002 bodies, restored on downgrade.
DOWNGRADE_STATEMENTS = (
    """CREATE OR REPLACE FUNCTION vstore.search_captions(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> q
    FROM public.captions c
    ORDER BY c.embedding <=> q
    LIMIT k
$$;
""",
    """CREATE OR REPLACE FUNCTION vstore.captions_for_image(image_id bigint, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    FROM public.captions c
    ORDER BY c.embedding <=> (SELECT s.embedding FROM public.images s WHERE s.id = $1)
    LIMIT k
$$;
""",
)


def upgrade() -> None:
    op.add_column("datasets", sa.Column("source", sa.Text))
    op.create_index("datasets_source_idx", "datasets", ["source"])
    for statement in STATEMENTS:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE_STATEMENTS:
        op.execute(statement)
    op.drop_index("datasets_source_idx", table_name="datasets")
    op.drop_column("datasets", "source")
