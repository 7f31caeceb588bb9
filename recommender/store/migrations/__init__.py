"""Alembic migrations of the store's schema, run in code by `Store.migrate()` (no alembic.ini)."""
