"""Alembic migrations of the one database, applied by fleet.store.db.migrate() when it opens."""
