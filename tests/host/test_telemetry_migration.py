"""Migration 0005_readings_by_uplink on a registry with data, on SQLite and on PostgreSQL: readings keep
their values and their order within each uplink both ways, and ingest and device removal work after."""

import json
from datetime import datetime, timedelta, timezone

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, inspect, text

from fleet.registry import Registry
from fleet.store.db import MIGRATIONS
from fleet.telemetry import TelemetryStore, parse_event
from telemetry_support import enroll, waste_event
from test_registry_support import ADMIN, AARHUS, db_url, key  # noqa: F401 (fixtures)

REVISION = "0005_readings_by_uplink"


def _alembic(url, step, target):
    engine = create_engine(url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    try:
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            step(cfg, target)
    finally:
        engine.dispose()


def _rows(url, sql):
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).all()
    finally:
        engine.dispose()


def _ingest(store, events):
    return store.ingest([parse_event(json.dumps(e), "chirpstack") for e in events])


def test_readings_survive_the_migration_both_ways(db_url, key):
    reg = Registry.open(db_url, key=key)
    a, b = enroll(reg), enroll(reg)
    store = TelemetryStore(reg)
    t0 = datetime.now(timezone.utc) - timedelta(hours=8)
    _ingest(store, [waste_event(a.dev_eui, 1, fill_bp=5000, at=t0), waste_event(b.dev_eui, 1, fill_bp=3000, at=t0),
                    waste_event(a.dev_eui, 2, fill_bp=5300, at=t0 + timedelta(hours=2))])
    before = {d.dev_eui: store.readings(AARHUS, d.dev_eui) for d in (a, b)}
    reg.close()

    # back to 0003_telemetry: readings with their own ids again, oldest first within each uplink
    _alembic(db_url, command.downgrade, f"{REVISION}-1")
    engine = create_engine(db_url)
    try:
        assert "id" in {c["name"] for c in inspect(engine).get_columns("readings")}
        assert {fk["referred_table"] for fk in inspect(engine).get_foreign_keys("readings")} == {"uplinks", "devices"}
    finally:
        engine.dispose()
    old = _rows(db_url, "SELECT uplink_id, id, at, fill_bp FROM readings ORDER BY uplink_id, id")
    assert len(old) == 24
    for u in {r.uplink_id for r in old}:
        ats = [r.at for r in old if r.uplink_id == u]
        assert ats == sorted(ats)

    # and up again, as opening the registry does
    reg = Registry.open(db_url, key=key)
    try:
        new = _rows(db_url, "SELECT uplink_id, seq, at, fill_bp FROM readings ORDER BY uplink_id, seq")
        assert [(r.uplink_id, r.at, r.fill_bp) for r in new] == [(r.uplink_id, r.at, r.fill_bp) for r in old]
        assert [r.seq for r in new] == list(range(8)) * 3
        store = TelemetryStore(reg)
        assert {d.dev_eui: store.readings(AARHUS, d.dev_eui) for d in (a, b)} == before
        # ingest goes on with new uplink ids; removing a device removes its readings (its uplinks' trigger)
        r = _ingest(store, [waste_event(a.dev_eui, 3, at=t0 + timedelta(hours=4))])
        assert (r.stored, len(store.readings(AARHUS, a.dev_eui))) == (1, 24)
        reg.remove_device(ADMIN, b.dev_eui, note="test")
        assert _rows(db_url, "SELECT count(*), count(DISTINCT uplink_id) FROM readings")[0] == (24, 3)
    finally:
        reg.close()

