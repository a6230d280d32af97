"""Alembic revisions, applied in order by `shared.db.migrate.upgrade`."""
