"""The one database of the registry, the OTA store and telemetry: where it lives, how it is opened, and its
read and write sessions.

    db = Database.open(url)           # the engine, migrated to the newest revision
    with db.read() as s: ...          # a session for reads
    with db.write() as s: ...         # one transaction, committed at the end, rolled back on any error
    Registry(db, sealer); OtaStore(db); TelemetryStore(registry)   # all on this one engine

The URL is, in order: the `url` argument (the CLI's --db), FLEET_DB, or an SQLite file `registry.sqlite` in
the user's data directory. PostgreSQL: `postgresql+psycopg://user@host/db`. A bare path is taken as an
SQLite file. Opening applies any pending Alembic migration (migrations/ in this package).
"""

import os
import re
import sys
import threading
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError
from sqlalchemy.orm import Session

from ..errors import RegistryDamaged, RegistryReadOnly, RegistryUnavailable

ENV_DB = "FLEET_DB"
MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATE_LOCK = threading.Lock()  # Alembic keeps its context in module globals: one migration per process at once


def default_url() -> str:
    import platformdirs

    path = Path(platformdirs.user_data_dir("bysans", appauthor=False)) / "registry.sqlite"
    return f"sqlite:///{path}"


def resolve_url(url: str | None = None) -> str:
    url = url or os.environ.get(ENV_DB) or default_url()
    if "://" not in url:  # a path
        url = f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def describe(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def make_engine(url: str) -> Engine:
    try:
        u = make_url(url)
    except ArgumentError:
        raise RegistryUnavailable(f"'{describe(url)}' is not a database URL") from None
    if u.get_backend_name() == "sqlite":
        # a URI filename (sqlite:///file:PATH?mode=ro&uri=true) is SQLite's to read: no folder named 'file:'
        if u.database and u.database != ":memory:" and not u.database.startswith("file:"):
            Path(u.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(u, connect_args={"timeout": 30, "check_same_thread": False})
        _sqlite_setup(engine)
    else:
        try:
            engine = create_engine(u, pool_pre_ping=True)
        except Exception as e:  # a missing driver, a bad option
            raise RegistryUnavailable(f"cannot use {describe(url)}: {type(e).__name__}: {e}") from None
    return engine


def _sqlite_setup(engine: Engine) -> None:
    """WAL, foreign keys, a 30 s busy wait, and BEGIN IMMEDIATE for writing transactions.

    pysqlite's own transaction handling is switched off so that a writer takes the write lock at BEGIN:
    two writers then queue on the busy timeout instead of one failing on a read-to-write lock upgrade.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("fleet_write") else "BEGIN")


def head_revision() -> str | None:
    """The newest migration's id, read from the files in migrations/versions without loading Alembic (which
    takes longer to import than a listing takes to run); None when the history does not have one head."""
    revisions, downs = set(), set()
    for path in (MIGRATIONS / "versions").glob("[0-9]*.py"):
        text = path.read_text(encoding="utf-8")
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        down = re.search(r"^down_revision\s*=\s*(.+)$", text, re.M)
        if rev is None or down is None:
            return None
        revisions.add(rev.group(1))
        downs.update(re.findall(r'"([^"]+)"', down.group(1)))
    heads = revisions - downs
    return heads.pop() if len(heads) == 1 else None


def _at_head(engine: Engine) -> bool:
    """True when the database already stands at the one head revision: nothing to migrate."""
    head = head_revision()
    if head is None:
        return False
    try:
        with engine.connect() as conn:
            have = [r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    except DatabaseError:  # a new database (no version table) or one that does not answer: Alembic says which
        return False
    return have == [head]


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (idempotent). A database at the newest revision is only
    checked, without loading Alembic."""
    if _at_head(engine):
        return
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    try:
        with _MIGRATE_LOCK, engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # Two processes opening a fresh registry at once: one migrates, the other waits.
                conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727001)")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")  # one linear history since 0006 merged the branches of 0001
    except DatabaseError as e:
        if not _about_the_database(e):
            raise
        raise unavailable(e, str(engine.url), "cannot open the registry") from None


@contextmanager
def read_session(engine: Engine):
    """A session for reads; a registry that does not answer becomes RegistryUnavailable."""
    try:
        with Session(engine, expire_on_commit=False) as s:
            yield s
    except DatabaseError as e:
        if not _about_the_database(e):
            raise  # a constraint or a statement: the caller's to handle (IntegrityError is retried)
        raise unavailable(e, str(engine.url), "the registry did not answer") from None


@contextmanager
def write_session(engine: Engine):
    """One transaction (BEGIN IMMEDIATE on SQLite, see _sqlite_setup); committed at the end, rolled back on
    any error; a registry that does not answer becomes RegistryUnavailable."""
    try:
        with Session(engine, expire_on_commit=False) as s:
            s.connection(execution_options={"fleet_write": True})
            yield s
            s.commit()
    except DatabaseError as e:
        if not _about_the_database(e):
            raise  # a constraint or a statement: the caller's to handle (IntegrityError is retried)
        raise unavailable(e, str(engine.url), "the registry did not answer") from None


# What SQLite says of a file that is not (or no longer) a database, and of one it may not write.
_DAMAGED = ("file is not a database", "database disk image is malformed", "file is encrypted")
_READ_ONLY = ("readonly database", "read-only", "unable to open database file")


def _about_the_database(e: DatabaseError) -> bool:
    """True for errors of the database itself (cannot open, locked, damaged, read-only), not of a statement."""
    return isinstance(e, OperationalError) or type(e) is DatabaseError


def unavailable(e: DatabaseError, url: str, what: str) -> RegistryUnavailable:
    """The named error for a database error: a damaged file, a read-only one, or a registry that does not
    answer (a server that is down, a lock held too long)."""
    detail = _first_line(e.orig if getattr(e, "orig", None) is not None else e)
    low = detail.lower()
    u = make_url(url)
    if u.get_backend_name() == "sqlite":
        where = u.database or "(in memory)"
        if any(m in low for m in _DAMAGED):
            return RegistryDamaged(f"the registry file {where} is damaged or is not a registry ({detail})")
        if any(m in low for m in _READ_ONLY):
            return RegistryReadOnly(f"the registry file {where} cannot be written ({detail})")
    return RegistryUnavailable(f"{what} at {describe(url)}: {detail}")


class Database:
    """One database, one engine: what the registry, the OTA store and telemetry share. Thread-safe: each
    session is its own; `read()` and `write()` are the only ways in."""

    def __init__(self, engine: Engine):
        self.engine = engine

    @classmethod
    def open(cls, url: str | None = None) -> "Database":
        """Opens (and creates or migrates) the database at `url` (see resolve_url)."""
        engine = make_engine(resolve_url(url))
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine)

    @property
    def dialect(self) -> str:
        """'sqlite' or 'postgresql'."""
        return self.engine.dialect.name

    def read(self):
        """A session for reads (see read_session)."""
        return read_session(self.engine)

    def write(self):
        """One transaction (see write_session)."""
        return write_session(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        return f"<Database {describe(str(self.engine.url))}>"


def aware(t: datetime | None) -> datetime | None:
    """A datetime read back from the database, as UTC: SQLite hands back naive datetimes (stored as UTC)."""
    return t.replace(tzinfo=timezone.utc) if t is not None and t.tzinfo is None else t


def _first_line(exc) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _revision(message: str) -> None:  # development helper, see migrations/env.py
    from alembic import command
    from alembic.config import Config

    engine = make_engine("sqlite://")
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        command.revision(cfg, message=message, autogenerate=True)


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "revision":
    _revision(sys.argv[2])
