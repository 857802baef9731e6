"""model switch: the shadow tables `vstore reembed` fills before it swaps the vectors

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

reembed_run records the model being switched to (one row while a switch is under way); reembed_images
and reembed_captions hold the new vectors, one row per image/caption, written in committed batches, so
a crash loses at most one batch and the re-run continues. `source_hash` is what the vector was computed
from (the image's content hash, the caption's md5), so rows changed by an ingest meanwhile are redone.
Their vector columns have no dimension: the new model's may differ from the database's.
"""

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reembed_run",
        sa.Column("id", sa.SmallInteger, primary_key=True, server_default=sa.text("1"), autoincrement=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("pretrained", sa.Text, nullable=False),
        sa.Column("checkpoint_sha256", sa.Text),
        sa.Column("dim", sa.Integer, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.CheckConstraint("id = 1", name="reembed_run_single_row"),
    )
    for table in ("images", "captions"):
        op.create_table(
            f"reembed_{table}",
            sa.Column(
                "id",
                sa.BigInteger,
                sa.ForeignKey(f"{table}.id", ondelete="CASCADE"),
                primary_key=True,
                autoincrement=False,
            ),
            sa.Column("source_hash", sa.Text),
            sa.Column("embedding", Vector()),
        )
        op.execute(f"ALTER TABLE reembed_{table} ALTER COLUMN embedding SET STORAGE PLAIN")


def downgrade() -> None:
    for table in ("reembed_captions", "reembed_images", "reembed_run"):
        op.drop_table(table)
