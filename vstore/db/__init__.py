"""The database wing: connections (connect), the embedded server (embedded), Alembic (migrations), the
SQLAlchemy tables (schema), the sql/ files (sql), vector indexes (indexes) and `vstore db status` (status)."""
