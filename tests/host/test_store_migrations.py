"""The one migration history (fleet/store/migrations): one head, and a database at any released revision,
with data in it, upgrades to that head on SQLite and on PostgreSQL — its devices, sealed AppKeys, audit
log, check-ins, rollouts, uplinks and readings intact, and every store working on it afterwards.

Until 0006_one_history the history had two branches from 0001 (rollouts 0002 -> 0004, telemetry
0003 -> 0005), and a registry was upgraded to all heads: a real database is at one of the states below,
or at one of the linear revisions since the merge.
"""

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, create_engine, insert, select, text

from provisioning.identity import new_identity
from fleet.registry import Registry
from fleet.registry.sealing import Sealer
from fleet.rollout import OtaStore
from fleet.store.db import MIGRATIONS
from fleet.telemetry import TelemetryStore, parse_event
from telemetry_support import waste_event
from test_registry_support import AARHUS, ADMIN, db_url, key, new_device  # noqa: F401 (fixtures)

HEAD = "0013_fuota_counter"
MERGE = "0006_one_history"  # where the two branches joined; linear from there
RELEASED = ["0001", "0002_rollouts", "0003_telemetry", "0004_checkin_auth", "0005_readings_by_uplink"]
# What `upgrade heads` left behind at each release (both branches), and each revision on its own.
STATES = [(), *[(r,) for r in RELEASED], ("0002_rollouts", "0003_telemetry"), ("0004_checkin_auth", "0003_telemetry"),
          ("0004_checkin_auth", "0005_readings_by_uplink")]
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=timezone.utc)
MANIFEST, OLD = "ab" * 32, "cd" * 32


def _config(conn=None, stdout=None) -> Config:
    cfg = Config(stdout=stdout) if stdout is not None else Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    if conn is not None:
        cfg.attributes["connection"] = conn
    return cfg


def test_the_history_has_one_head_and_keeps_the_released_revisions():
    script = ScriptDirectory.from_config(_config())
    assert script.get_heads() == [HEAD]
    out = io.StringIO()
    command.heads(_config(stdout=out))  # what `alembic heads` prints
    assert out.getvalue().split() == [HEAD, "(head)"]
    merge = script.get_revision(MERGE)
    assert set(merge.down_revision) == {"0004_checkin_auth", "0005_readings_by_uplink"}
    # linear from the merge to the head: each later revision has exactly one parent
    linear, rev = [], script.get_revision(HEAD)
    while rev.revision != MERGE:
        assert isinstance(rev.down_revision, str), f"{rev.revision} is not linear after {MERGE}"
        linear.append(rev.revision)
        rev = script.get_revision(rev.down_revision)
    assert linear[-1] == "0007_ingest_workers" and linear[0] == HEAD
    # the released ids are unchanged, and every one of them is below the head
    assert {r.revision for r in script.walk_revisions()} == {*RELEASED, MERGE, *linear}
    ancestors = {r.revision for r in script.iterate_revisions(HEAD, "base")}
    assert set(RELEASED) <= ancestors
    assert _since_merge() == [MERGE, *reversed(linear[1:])]  # what the upgrade test starts from after the merge


def _at(url, state):
    """A database at `state` (the revisions alembic_version holds), as an older release left it."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            for rev in state:
                command.upgrade(_config(conn), rev)
            return sorted(conn.execute(text("SELECT version_num FROM alembic_version")).scalars()) if state else []
    finally:
        engine.dispose()


def _fill(url, sealer, dev_eui, app_key) -> set:
    """Rows in every table this revision has (only the columns it has). Returns the table names."""
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine)
        t = meta.tables

        def add(conn, table, **row):
            conn.execute(insert(t[table]), [{k: v for k, v in row.items() if k in t[table].c}])

        with engine.begin() as conn:
            if "devices" not in t:
                return set()
            add(conn, "devices", dev_eui=dev_eui, join_eui="70B3D57ED0000000",
                app_key_sealed=sealer.seal(app_key, f"{dev_eui}/app_key"), name="waste-0751-old",
                kommune_kode="0751", kommune_navn="Aarhus", site="Park Allé 1", latitude=56.1572, longitude=10.2107,
                board="virtual", kind="waste", sensors=[], firmware_version="1.0.0", state="active",
                last_seen=T0, created_at=T0, updated_at=T0)
            dev_id = conn.execute(select(t["devices"].c.id).where(t["devices"].c.dev_eui == dev_eui)).scalar_one()
            add(conn, "audit_log", at=T0, operator="anna", action="device.enroll", kommune_kode="0751",
                dev_eui=dev_eui, changes={"site": [None, "Park Allé 1"]}, note="before the upgrade")
            if "rollouts" in t:
                add(conn, "ota_devices", device=dev_eui, kommune_kode="0751", board="virtual", version="1.0.0",
                    counter=100, release=OLD, slot="a", state="confirmed", checkins=3, first_seen=T0, last_seen=T0)
                add(conn, "rollouts", kommune_kode="0751", boards=["virtual"], version="2.0.0", counter=200,
                    manifest=MANIFEST, waves=[1000], halt_at=100, state="paused", wave=0, forgiven=0,
                    note="paused before the upgrade", operator="anna", created_at=T0, updated_at=T0, seed="s")
                ro_id = conn.execute(select(t["rollouts"].c.id)).scalar_one()
                add(conn, "rollout_devices", rollout_id=ro_id, device=dev_eui, position=0, wave=0, state="pending",
                    updated_at=T0)
            if "ota_checkin_auth" in t:
                add(conn, "ota_checkin_auth", device=dev_eui, key_sealed=None, last_seq=0, accepted=0,
                    unauthenticated=2, rejected=0)
            if "uplinks" in t:
                add(conn, "uplinks", device_id=dev_id, dedup_key="old-1", received_at=T0, f_cnt=5, f_port=2,
                    rssi=-90.0, snr=7.5, dr=5, frequency=868100000, gateways=1, source="chirpstack", payload=b"\x01")
                up_id = conn.execute(select(t["uplinks"].c.id)).scalar_one()
                for seq, fill in enumerate((4800, 5000)):
                    add(conn, "readings", uplink_id=up_id, seq=seq, device_id=dev_id,
                        at=T0 - timedelta(minutes=30 * (1 - seq)), kind="waste", fill_bp=fill, batt_mv=3600)
                add(conn, "device_health", device_id=dev_id, last_seen=T0, last_f_cnt=5, uplinks=1, lost_uplinks=0,
                    interval_s=3600, fill_bp=5000, battery_mv=3600, reading_at=T0, updated_at=T0)
                add(conn, "api_tokens", token_id="0a1b2c3d", token_hash="0" * 64, kommune_kode="0751",
                    role="kommune", name="old token", created_by="anna", created_at=T0)
        return set(t)
    finally:
        engine.dispose()


def _repo(tmp_path):
    repo = tmp_path / "repo"
    (repo / "manifests").mkdir(parents=True)
    body = {"_type": "bysans-release", "format": 1, "version": "2.0.0", "counter": 200, "boards": ["virtual"],
            "kommuner": ["0751"], "files": []}
    (repo / "manifests" / f"{MANIFEST}.json").write_text(json.dumps(body) + "\n[]\n")
    return repo


def _since_merge() -> list[str]:
    """The merge and each revision after it below the head, oldest first: main stood at each of them (a
    database made then is at one), and a migration added later is covered here without a list to update."""
    script = ScriptDirectory.from_config(_config())
    return [MERGE] + [r.revision for r in script.iterate_revisions(HEAD, MERGE)][:0:-1]


@pytest.mark.parametrize("state", STATES + [(r,) for r in _since_merge()], ids=lambda s: "+".join(s) or "empty")
def test_a_database_at_a_released_revision_upgrades_to_the_head_with_its_data(db_url, key, state, tmp_path):
    assert _at(db_url, state) == sorted(state)
    ident = new_identity()
    eui = ident.dev_eui
    tables = _fill(db_url, Sealer(key), eui, ident.app_key)

    reg = Registry.open(db_url, key=key)  # upgrades, as every command does
    try:
        engine = create_engine(db_url)
        try:
            with engine.connect() as c:
                assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
        finally:
            engine.dispose()
        ota = OtaStore(reg.db)
        assert ota.engine is reg.engine  # one database, one engine
        if "devices" in tables:
            assert reg.app_keys(ADMIN, [eui], purpose="test") == {eui: ident.app_key}
            assert reg.get_device(AARHUS, eui).site == "Park Allé 1"
            old = [a for a in reg.audit_log(AARHUS, dev_eui=eui) if a.action == "device.enroll"]
            assert [(a.operator, a.note) for a in old] == [("anna", "before the upgrade")]
        else:
            eui = reg.add_device(ADMIN, new_device(), ident).dev_eui
        if "rollouts" in tables:
            st = ota.status(kommune="751")
            assert (st.state, st.version, st.note, st.counts["pending"]) == ("paused", "2.0.0",
                                                                             "paused before the upgrade", 1)
            assert ota.device(eui)["checkins"] == 3
            assert ota.device(eui)["checkin_auth"]["unauthenticated"] == (2 if "ota_checkin_auth" in tables else 0)
            assert ota.resume(kommune="751", operator="bo").state == "running"
        else:
            ota.checkin({"device": eui, "kommune": "0751", "board": "virtual", "state": "confirmed",
                         "release": OLD, "version": "1.0.0"})
            assert ota.start(kommune="751", version="2.0.0", waves=[1000], halt_at=100, repo_dir=_repo(tmp_path),
                             operator="bo").state == "running"
        assert [a.operator for a in reg.audit_log(AARHUS) if a.action.startswith("rollout.")] == ["bo"]
        store = TelemetryStore(reg)
        if "uplinks" in tables:
            assert [r["fill_bp"] for r in store.readings(AARHUS, eui)] == [5000, 4800]  # newest first
            assert store.health(AARHUS, eui)["fill_bp"] == 5000
        r = store.ingest([parse_event(json.dumps(waste_event(eui, 6, fill_bp=5500)), "chirpstack")])
        assert (r.stored, r.rejected) == (1, [])
        assert store.readings(AARHUS, eui, limit=1)[0]["fill_bp"] == 5500
        ota.close()
        assert reg.count_devices(AARHUS) == 1  # closing a store on a shared database leaves it open
    finally:
        reg.close()



def test_the_head_read_without_alembic_is_alembics_head(tmp_path):
    # Database.open skips Alembic when the database stands at head_revision(): the two must agree, and a
    # database below the head (or a new one) still goes through Alembic's upgrade
    from fleet.store.db import Database, head_revision

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert head_revision() == ScriptDirectory.from_config(cfg).get_current_head() == HEAD
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    Database.open(url).close()
    engine = create_engine(url)
    with engine.begin() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    engine.dispose()
    old = f"sqlite:///{tmp_path / 'old.sqlite'}"  # a registry left at both released heads (0004 and 0005)
    engine = create_engine(old)
    with engine.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "0004_checkin_auth")
        command.upgrade(cfg, "0005_readings_by_uplink")
    engine.dispose()
    Database.open(old).close()  # not at the head: Alembic upgrades it
    engine = create_engine(old)
    with engine.connect() as c:
        assert c.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [HEAD]
    engine.dispose()
