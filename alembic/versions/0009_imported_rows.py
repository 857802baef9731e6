"""imported rows: images and captions say whether vstore encoded their vector or imported it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04

`vstore import clip-retrieval` stores vectors computed elsewhere (a GPU cluster); those rows are marked
origin = 'imported', so a later `vstore ingest` of the same folder can reuse their vectors for unchanged
files, and nobody mistakes them for vectors this machine encoded.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

ORIGINS = "origin IN ('encoded', 'imported')"


def upgrade() -> None:
    for table in ("images", "captions"):
        op.add_column(table, sa.Column("origin", sa.Text, nullable=False, server_default="encoded"))
        op.create_check_constraint(f"{table}_origin_check", table, ORIGINS)


def downgrade() -> None:
    for table in ("images", "captions"):
        op.drop_constraint(f"{table}_origin_check", table)
        op.drop_column(table, "origin")
