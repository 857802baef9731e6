"""storage is the column type: drop embedding_model.storage

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04

Revision 0004 recorded the storage (vector or halfvec) in embedding_model.storage beside the type of the
images/captions embedding columns. Nothing read the record: every reader (index DDL, search, export,
reembed, `vstore db status`) asks PostgreSQL for the column type, and a second copy can only drift from
it. The column type is the one source of truth from here on (vstore.db.indexes.column_type).
Downgrade puts the record back, filled from the column type, so 0004's downgrade finds it.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_constraint("embedding_model_storage_check", "embedding_model")
    op.drop_column("embedding_model", "storage")


def downgrade() -> None:
    op.add_column(
        "embedding_model",
        sa.Column("storage", sa.Text, nullable=False, server_default="vector"),
    )
    op.create_check_constraint(
        "embedding_model_storage_check", "embedding_model", "storage IN ('vector', 'halfvec')"
    )
    op.execute(
        "UPDATE public.embedding_model SET storage = CASE WHEN format_type(a.atttypid, a.atttypmod) "
        "LIKE 'halfvec%' THEN 'halfvec' ELSE 'vector' END "
        "FROM pg_attribute a WHERE a.attrelid = 'public.images'::regclass AND a.attname = 'embedding'"
    )
