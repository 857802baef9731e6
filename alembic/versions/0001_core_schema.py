"""core schema: model record, datasets, images, captions, text_queries, HNSW indexes

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import context, op
from pgvector.sqlalchemy import Vector

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EMBEDDING_COLUMNS = (("images", "embedding"), ("captions", "embedding"), ("text_queries", "embedding"))


def _model_spec():
    """The model this database is created for: given by `vstore init`/`vstore ingest`, else from settings."""
    attributes = context.config.attributes
    spec = attributes.get("model_spec")
    if spec is None:
        from vstore.config import DEFAULT_MODEL, DEFAULT_PRETRAINED, Settings
        from vstore.encode.encoder import resolve_spec  # moved from vstore.encoder (wings)

        settings = attributes.get("settings") or Settings.from_env()
        spec = resolve_spec(settings.model or DEFAULT_MODEL, settings.pretrained or DEFAULT_PRETRAINED)
    return spec


def _timestamps(*names):
    return [
        sa.Column(n, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()) for n in names
    ]


def upgrade() -> None:
    spec = _model_spec()
    dim = spec.dim
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")

    op.create_table(
        "embedding_model",
        sa.Column("id", sa.SmallInteger, primary_key=True, server_default=sa.text("1"), autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("pretrained", sa.Text, nullable=False),
        sa.Column("checkpoint_sha256", sa.Text),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("random_weights", sa.Boolean, nullable=False, server_default=sa.false()),
        *_timestamps("created_at"),
        sa.CheckConstraint("id = 1", name="embedding_model_single_row"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.Text, nullable=False, unique=True),
        sa.Column("root", sa.Text, nullable=False),
        sa.Column("format", sa.Text, nullable=False),
        *_timestamps("created_at"),
    )
    op.create_table(
        "images",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "dataset_id", sa.BigInteger, sa.ForeignKey("datasets.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("split", sa.Text),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("content_hash", sa.Text),
        sa.Column("size", sa.BigInteger),
        sa.Column("mtime", sa.Double),
        sa.Column("width", sa.Integer),
        sa.Column("height", sa.Integer),
        sa.Column("source_id", sa.Text),
        sa.Column("label", sa.Text),
        sa.Column("status", sa.Text, nullable=False, server_default="ok"),
        sa.Column("error", sa.Text),
        sa.Column("embedding", Vector(dim)),
        *_timestamps("created_at", "updated_at"),
        sa.UniqueConstraint("dataset_id", "path", name="images_dataset_path_key"),
        sa.CheckConstraint("status IN ('ok', 'failed', 'missing')", name="images_status_check"),
    )
    op.create_index("images_content_hash_idx", "images", ["content_hash"])
    op.create_index("images_dataset_split_idx", "images", ["dataset_id", "split"])
    op.create_table(
        "captions",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("image_id", sa.BigInteger, sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source_id", sa.Text, nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("embedding", Vector(dim)),
        *_timestamps("created_at"),
        sa.UniqueConstraint("image_id", "source_id", name="captions_image_source_key"),
    )
    op.create_index("captions_image_id_idx", "captions", ["image_id"])
    op.create_table(
        "text_queries",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("text", sa.Text, nullable=False, unique=True),
        sa.Column("embedding", Vector(dim), nullable=False),
        *_timestamps("created_at"),
    )
    op.create_table(
        "deferred_indexes",
        sa.Column("name", sa.Text, primary_key=True),
        sa.Column("definition", sa.Text, nullable=False),
        *_timestamps("created_at"),
    )
    # A vector(512) is 2 KB, right at the TOAST threshold: PLAIN keeps it inline so exact scans do not
    # detoast (and try to compress) every row.
    for table, column in EMBEDDING_COLUMNS:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN {column} SET STORAGE PLAIN")
    for table in ("images", "captions"):
        op.create_index(
            f"{table}_embedding_hnsw",
            table,
            ["embedding"],
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        )
    op.execute(
        sa.text(
            "INSERT INTO embedding_model (id, name, pretrained, checkpoint_sha256, dim, random_weights) "
            "VALUES (1, :name, :pretrained, :sha, :dim, :random)"
        ).bindparams(
            name=spec.name,
            pretrained=spec.pretrained,
            sha=spec.checkpoint_sha256,
            dim=dim,
            random=spec.random_weights,
        )
    )


def downgrade() -> None:
    # The vector extension stays: on a shared server other schemas may use it.
    for table in ("deferred_indexes", "text_queries", "captions", "images", "datasets", "embedding_model"):
        op.drop_table(table)
