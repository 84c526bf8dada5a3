"""Alembic migrations of the engine's own ``appbook_*`` tables."""
