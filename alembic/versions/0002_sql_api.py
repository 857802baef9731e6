"""SQL API: functions in schema `vstore` (sql/api/*.sql)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen list: a later revision that changes a function re-runs its file (CREATE OR REPLACE).
API_FILES = (
    "api/text",
    "api/search_images",
    "api/search_captions",
    "api/similar_images",
    "api/captions_for_image",
    "api/images_for_caption",
)


def upgrade() -> None:
    from vstore.sql import load

    op.execute("CREATE SCHEMA IF NOT EXISTS vstore")
    for name in API_FILES:
        op.execute(load(name))


def downgrade() -> None:
    op.execute("DROP SCHEMA IF EXISTS vstore CASCADE")
