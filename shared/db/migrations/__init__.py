"""Alembic migrations of the faultline database (`faultline db upgrade`)."""
