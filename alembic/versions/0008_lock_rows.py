"""lock rows: vstore's coordination on rows only the owner may lock

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04

pg_advisory_lock may be called by every role, so `vstore db reader`'s role could hold vstore's advisory
keys: block every ingest, or fake a bulk load in progress. vstore.locks holds one row per lock; vstore
locks a row with SELECT ... FOR UPDATE / FOR SHARE, which needs UPDATE privilege on the table, and nobody
but the owner has any privilege on it (not even SELECT). Frozen: the row names are written out here.
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE TABLE vstore.locks (name text PRIMARY KEY)")
    op.execute("REVOKE ALL ON TABLE vstore.locks FROM PUBLIC")
    op.execute("INSERT INTO vstore.locks (name) VALUES ('datasets'), ('bulk_load'), ('reembed')")


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS vstore.locks")
