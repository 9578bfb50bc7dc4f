"""Alembic migrations of the registry, applied by fleet.registry.db.migrate() when a registry opens."""
