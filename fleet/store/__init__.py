"""The one database the registry, the OTA store and telemetry share: its tables and its migrations.

A library: it returns values and raises FleetErrors; it never prints. db.py opens the database (one
engine, migrated to the newest revision) and hands out read and write sessions; models.py holds every
table; migrations/ is the one linear Alembic history.
"""

from .db import Database, aware

__all__ = ["Database", "aware"]
