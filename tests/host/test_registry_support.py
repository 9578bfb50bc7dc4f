"""Fixtures shared by the registry, enrollment and export tests (imported by those modules).

`db_url` runs a test twice: on an SQLite file, and on PostgreSQL in a schema of its own (dropped after),
so runs never collide.
"""

import base64
import os
import uuid
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from fleet.registry import NewDevice, Operator, Registry

AARHUS = Operator("anna", kommune="751")
ODENSE = Operator("ole", kommune="461")
ADMIN = Operator("admin", role="cross-kommune")


def new_device(kommune="751", site="Park Allé 1, bin 3", kind="waste", **kw):
    kw.setdefault("board", "virtual")
    return NewDevice(kommune=kommune, site=site, kind=kind, **kw)


@pytest.fixture
def key():
    return os.urandom(32)


@pytest.fixture
def key_env(key, monkeypatch):
    """The registry key in FLEET_SECRET_KEY, as the CLI reads it."""
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(key).decode())
    return key


@contextmanager
def pg_schema_url(postgres_url):
    """A URL on the test PostgreSQL whose search path is a schema of its own, dropped after."""
    schema = "t_" + uuid.uuid4().hex[:16]
    admin = create_engine(postgres_url)
    with admin.begin() as c:
        c.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False)
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        admin.dispose()


@pytest.fixture
def pg_schema(postgres_url):
    """A PostgreSQL URL with a schema of its own (for the tests that run on PostgreSQL only)."""
    with pg_schema_url(postgres_url) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'registry.sqlite'}"
        return
    with pg_schema_url(request.getfixturevalue("postgres_url")) as url:
        yield url


def run_cli(argv, capsys):
    """`fleet ARGV` in this process: (exit code, stdout, stderr)."""
    from fleet.cli import main

    try:
        main(list(argv))
        code = 0
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def registry(db_url, key):
    reg = Registry.open(db_url, key=key)
    yield reg
    reg.close()


def admin_token(db_url) -> str:
    """A cross-kommune API token for the registry at db_url (for the server's token-guarded routes)."""
    from fleet.registry.tokens import create_token

    reg = Registry.open(db_url)
    try:
        return create_token(reg, ADMIN, cross_kommune=True)[0]
    finally:
        reg.close()
