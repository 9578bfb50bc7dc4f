"""Alembic environment: always online, on the connection fleet.store.db hands over.

There is no alembic.ini: fleet.store.db.migrate() builds the Config in code. To write a new migration
during development:

    .venv/bin/python -m fleet.store.db revision "add a column"
"""

from alembic import context

from fleet.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
