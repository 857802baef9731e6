"""storage choice: embedding_model.storage, halfvec(d) columns and halfvec_cosine_ops HNSW indexes

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

`vstore init --storage halfvec` asks for half-precision storage (2 bytes per dimension): images and
captions keep their vectors as halfvec(d), their HNSW indexes use halfvec_cosine_ops, and the SQL API
functions compare against the halfvec columns. The functions keep their `q vector` signatures (clients
and vstore.text() are unchanged): the query is cast to halfvec so the halfvec index serves it.
text_queries stays vector: it is a small cache of full-precision query vectors.

An existing database (no storage asked for) is recorded as 'vector' and otherwise left as it is.

Frozen: the statements are carried here, never read from sql/, like 0002. The functions filter on
images.status = 'ok' on every path (the caption functions through a join to images), as revision 0003
does for the vector functions; the downgrade of a halfvec database re-creates the vector functions in
that form.
"""

import sqlalchemy as sa
from alembic import context, op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

STORAGES = ("vector", "halfvec")
VECTOR_TABLES = ("images", "captions")

# {t}: the column type (vector or halfvec), {q}: the query as that type. Only STORAGES reach them.
FUNCTIONS = (
    """CREATE OR REPLACE FUNCTION vstore.search_images(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, dataset_id bigint, path text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT i.id, i.dataset_id, i.path, i.embedding <=> {q}
    FROM public.images i
    WHERE i.status = 'ok'
    ORDER BY i.embedding <=> {q}
    LIMIT k
$$;
""",
    """CREATE OR REPLACE FUNCTION vstore.search_captions(q vector, k integer DEFAULT 10)
RETURNS TABLE (id bigint, image_id bigint, text text, distance double precision)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT c.id, c.image_id, c.text, c.embedding <=> {q}
    FROM public.captions c
    JOIN public.images i ON i.id = c.image_id
    WHERE i.status = 'ok'
    ORDER BY c.embedding <=> {q}
    LIMIT k
$$;
""",
    """CREATE OR REPLACE FUNCTION vstore.similar_images(image_id bigint, k integer DEFAULT 10)
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
    """CREATE OR REPLACE FUNCTION vstore.captions_for_image(image_id bigint, k integer DEFAULT 10)
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
    """CREATE OR REPLACE FUNCTION vstore.images_for_caption(caption_id bigint, k integer DEFAULT 10)
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


def _asked_storage() -> str:
    """The storage `vstore init --storage` asked for; None (an existing database) means vector."""
    storage = context.config.attributes.get("storage") or "vector"
    if storage not in STORAGES:
        raise ValueError(f"unknown storage {storage!r}; choose vector or halfvec")
    return storage


def _dim() -> int:
    return int(op.get_bind().execute(sa.text("SELECT dim FROM public.embedding_model WHERE id = 1")).scalar())


def _set_storage(storage: str, dim: int) -> None:
    """Convert the vector columns, their HNSW indexes (rebuilt with the defaults m 16, ef_construction
    64; an IVFFlat index is dropped) and the SQL functions."""
    column = f"{storage}({int(dim)})"
    for table in VECTOR_TABLES:
        op.execute(f"DROP INDEX IF EXISTS public.{table}_embedding_hnsw")
        op.execute(f"DROP INDEX IF EXISTS public.{table}_embedding_ivfflat")
        op.execute(
            f"ALTER TABLE public.{table} ALTER COLUMN embedding TYPE {column} USING embedding::{column}"
        )
        op.execute(f"ALTER TABLE public.{table} ALTER COLUMN embedding SET STORAGE PLAIN")
        op.execute(
            f"CREATE INDEX {table}_embedding_hnsw ON public.{table} "
            f"USING hnsw (embedding {storage}_cosine_ops) WITH (m = 16, ef_construction = 64)"
        )
    query = "q::halfvec" if storage == "halfvec" else "q"
    for statement in FUNCTIONS:
        op.execute(statement.replace("{q}", query))


def upgrade() -> None:
    op.add_column(
        "embedding_model",
        sa.Column("storage", sa.Text, nullable=False, server_default="vector"),
    )
    op.create_check_constraint(
        "embedding_model_storage_check", "embedding_model", "storage IN ('vector', 'halfvec')"
    )
    storage = _asked_storage()
    if storage != "vector":
        _set_storage(storage, _dim())
        op.execute(sa.text("UPDATE public.embedding_model SET storage = :s").bindparams(s=storage))


def downgrade() -> None:
    stored = op.get_bind().execute(sa.text("SELECT storage FROM public.embedding_model")).scalar()
    if stored not in (None, "vector"):
        _set_storage("vector", _dim())
    op.drop_constraint("embedding_model_storage_check", "embedding_model")
    op.drop_column("embedding_model", "storage")
