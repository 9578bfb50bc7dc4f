"""The registry: kommuner, identities, sealed AppKeys, audit, access by kommune, concurrency; on SQLite
and PostgreSQL."""

import os
import stat
import threading

import pytest
from sqlalchemy import create_engine, text

from fleet.errors import (AccessDenied, BadIdentifier, Conflict, NotFound, SecretKeyError, UnknownKommune,
                          UsageError)
from fleet.identifiers import eui64_from_mac
from fleet.registry import Operator, Registry, lookup
from fleet.registry.sealing import load_key
from provisioning.enrollment import board_config, enroll_board
from provisioning.identity import new_identity, random_dev_eui
from test_registry_support import (ADMIN, AARHUS, ODENSE, db_url, key, new_device,  # noqa: F401 (fixtures)
                                   registry)


# -- kommuner ------------------------------------------------------------------------------------------

def test_kommunekode_with_or_without_the_leading_zero():
    assert lookup("751").navn == "Aarhus"
    assert lookup("0751") == lookup(751) == lookup("aarhus")
    assert lookup("101").navn == "København"


def test_unknown_kommunekode_names_the_closest_kommuner():
    with pytest.raises(UnknownKommune) as e:
        lookup("9751")
    assert "0751 Aarhus" in e.value.message
    assert "fleet devices kommuner" in e.value.hint
    with pytest.raises(UnknownKommune):
        lookup("Arhus ")  # near a name: still refused, but named
    with pytest.raises(UnknownKommune):
        lookup("07510")


def test_there_are_98_kommuner_19_in_midtjylland():
    from fleet.registry import all_kommuner

    ks = all_kommuner()
    assert len(ks) == 98
    assert sum(k.region == "Midtjylland" for k in ks.values()) == 19


# -- identities ----------------------------------------------------------------------------------------

def test_dev_eui_from_a_mac_inserts_fffe():
    assert eui64_from_mac("24:0a:c4:12:34:56") == "240AC4FFFE123456"
    assert eui64_from_mac(bytes.fromhex("240ac4123456")) == "240AC4FFFE123456"
    assert new_identity(mac="24-0A-C4-12-34-56").dev_eui == "240AC4FFFE123456"


def test_random_dev_eui_is_locally_administered_unicast_and_differs():
    euis = {random_dev_eui() for _ in range(50)}
    assert len(euis) == 50
    for e in euis:
        first = int(e[:2], 16)
        assert first & 0x02 and not first & 0x01


def test_identity_repr_hides_the_app_key():
    ident = new_identity()
    assert len(ident.app_key) == 16
    for shown in (repr(ident), str(ident)):
        assert ident.app_key.hex() not in shown.lower() and "hidden" in shown


def test_a_malformed_app_key_is_not_echoed():
    secret = "00112233445566778899aabbccddeeZZ"
    with pytest.raises(BadIdentifier) as e:
        new_identity(app_key=secret)
    assert secret not in str(e.value)
    assert str(e.value).startswith("the value is not an AppKey (32 hex digits)")  # once 'not a AppKey'


def test_mac_and_dev_eui_must_agree():
    with pytest.raises(BadIdentifier):
        new_identity(mac="240ac4123456", dev_eui="240AC4FFFE000000")


# -- secrets at rest -----------------------------------------------------------------------------------

def test_app_key_is_sealed_in_the_database(registry):
    ident = new_identity()
    rec = registry.add_device(AARHUS, new_device(), ident)
    with registry.engine.connect() as c:
        raw = c.execute(text("SELECT * FROM devices")).one()._mapping
    blob = b"".join(bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in raw.values())
    assert ident.app_key not in blob and ident.app_key.hex().encode() not in blob.lower()
    assert registry.app_keys(AARHUS, [rec.dev_eui], purpose="test") == {rec.dev_eui: ident.app_key}
    assert ident.app_key.hex() not in repr(rec).lower() and "app_key" not in rec.to_dict()


def test_another_key_cannot_open_the_secrets(registry, db_url):
    rec = registry.add_device(AARHUS, new_device(), new_identity())
    other = Registry.open(db_url, key=os.urandom(32))
    try:
        with pytest.raises(SecretKeyError) as e:
            other.app_keys(AARHUS, [rec.dev_eui], purpose="test")
        assert "another key" in e.value.message
    finally:
        other.close()


def test_a_sealed_key_moved_to_another_row_does_not_open(registry):
    a = registry.add_device(AARHUS, new_device(), new_identity())
    b = registry.add_device(AARHUS, new_device(site="elsewhere"), new_identity())
    with registry.engine.begin() as c:
        sealed = c.execute(text("SELECT app_key_sealed FROM devices WHERE dev_eui = :e"), {"e": a.dev_eui}).scalar()
        c.execute(text("UPDATE devices SET app_key_sealed = :s WHERE dev_eui = :e"), {"s": sealed, "e": b.dev_eui})
    with pytest.raises(SecretKeyError):
        registry.app_keys(AARHUS, [b.dev_eui], purpose="test")


def test_key_file_is_created_owner_only_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("FLEET_SECRET_KEY", raising=False)
    path = tmp_path / "sub" / "registry.key"
    k1 = load_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_key(path) == k1 and len(k1) == 32


def test_a_malformed_key_in_the_environment_is_refused_without_echo(monkeypatch):
    monkeypatch.setenv("FLEET_SECRET_KEY", "not-a-key-but-maybe-secret")
    with pytest.raises(SecretKeyError) as e:
        load_key()
    assert "not-a-key" not in str(e.value)


# -- records and audit ---------------------------------------------------------------------------------

def test_enroll_update_and_audit(registry):
    rec = registry.add_device(AARHUS, new_device(latitude=56.15, longitude=10.2, sensors=("jsn-sr04t",)),
                              new_identity(mac="240ac4000001"))
    assert (rec.kommune_kode, rec.kommune_navn, rec.state) == ("0751", "Aarhus", "enrolled")
    assert rec.sensors == ("jsn-sr04t",) and rec.created_at.tzinfo is not None
    upd = registry.update_device(AARHUS, rec.dev_eui, site="Park Allé 2", firmware_version="1.2.0")
    assert upd.site == "Park Allé 2" and upd.updated_at >= rec.updated_at
    log = registry.audit_log(AARHUS, dev_eui=rec.dev_eui)
    assert [a.action for a in log] == ["device.update", "device.enroll"]
    assert log[0].operator == "anna"
    assert log[0].changes == {"site": ["Park Allé 1, bin 3", "Park Allé 2"], "firmware_version": [None, "1.2.0"]}
    assert log[1].changes["app_key"] == [None, "<set>"]


def test_a_refused_change_changes_nothing(registry):
    rec = registry.add_device(AARHUS, new_device(), new_identity())
    with pytest.raises(UsageError):
        registry.update_device(AARHUS, rec.dev_eui, site="ok", kind="toaster")
    with pytest.raises(UsageError):
        registry.update_device(AARHUS, rec.dev_eui, latitude=10.2, longitude=56.1)  # swapped
    assert registry.get_device(AARHUS, rec.dev_eui).site == rec.site
    assert len(registry.audit_log(AARHUS, dev_eui=rec.dev_eui)) == 1


def test_mark_seen_makes_a_device_active(registry):
    rec = registry.add_device(AARHUS, new_device(), new_identity())
    seen = registry.mark_seen(rec.dev_eui, firmware_version="1.0.1")
    assert seen.state == "active" and seen.last_seen is not None and seen.firmware_version == "1.0.1"


def test_reopening_applies_no_migration_twice(db_url, key):
    for _ in range(2):
        Registry.open(db_url, key=key).close()
    eng = create_engine(db_url)
    with eng.connect() as c:
        applied = c.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    # one row: the one head of the linear migration history, applied once
    from alembic.script import ScriptDirectory

    from fleet.store.db import MIGRATIONS

    heads = ScriptDirectory(str(MIGRATIONS)).get_heads()
    assert sorted(applied) == sorted(heads) and len(heads) == 1
    eng.dispose()


def test_an_unreachable_database_is_a_clear_error(key):
    from fleet.errors import RegistryUnavailable

    with pytest.raises(RegistryUnavailable) as e:
        Registry.open("postgresql+psycopg://nobody:secretpw@127.0.0.1:1/none", key=key)
    assert "secretpw" not in str(e.value)


# -- access by kommune ---------------------------------------------------------------------------------

def test_a_kommune_operator_sees_and_changes_only_its_own_devices(registry):
    mine = registry.add_device(AARHUS, new_device(), new_identity())
    theirs = registry.add_device(ODENSE, new_device(kommune="461", site="Flakhaven"), new_identity())
    assert [d.dev_eui for d in registry.list_devices(AARHUS)] == [mine.dev_eui]
    assert registry.count_devices(ODENSE) == 1
    with pytest.raises(NotFound):
        registry.get_device(AARHUS, theirs.dev_eui)
    with pytest.raises(NotFound):
        registry.update_device(AARHUS, theirs.dev_eui, site="hijacked")
    with pytest.raises(NotFound):
        registry.app_keys(AARHUS, [theirs.dev_eui], purpose="steal")
    with pytest.raises(NotFound):
        registry.remove_device(AARHUS, theirs.dev_eui, note="x")
    with pytest.raises(AccessDenied):
        registry.list_devices(AARHUS, kommune="461")
    with pytest.raises(AccessDenied):
        registry.add_device(AARHUS, new_device(kommune="461"), new_identity())
    with pytest.raises(AccessDenied):
        registry.move_device(AARHUS, mine.dev_eui, "461")
    assert registry.get_device(ODENSE, theirs.dev_eui).site == "Flakhaven"
    assert {a.kommune_kode for a in registry.audit_log(AARHUS)} == {"0751"}


def test_the_cross_kommune_role_sees_every_kommune(registry):
    registry.add_device(AARHUS, new_device(), new_identity())
    registry.add_device(ODENSE, new_device(kommune="461"), new_identity())
    assert registry.count_devices(ADMIN) == 2
    assert [d.kommune_kode for d in registry.list_devices(ADMIN, kommune="0461")] == ["0461"]


def test_an_operator_without_kommune_or_role_is_refused():
    with pytest.raises(UsageError):
        Operator("anna")
    with pytest.raises(UnknownKommune):
        Operator("anna", kommune="9999")


# -- one board -----------------------------------------------------------------------------------------

def test_enroll_board_writes_the_board_then_records_it(registry):
    written = []
    rec, ident = enroll_board(registry, AARHUS, new_device(), mac="240ac4abcdef", write_board=written.append)
    assert rec.state == "enrolled" and rec.dev_eui == "240AC4FFFEABCDEF"
    assert written == [board_config(ident, rec)]
    assert written[0]["lorawan"]["app_key"] == ident.app_key.hex().upper()


def test_a_failed_board_write_leaves_no_device(registry):
    def cable_pulled(config):
        assert registry.get_device(AARHUS, config["lorawan"]["dev_eui"]).state == "enrolling"
        raise OSError("cable pulled")

    with pytest.raises(OSError):
        enroll_board(registry, AARHUS, new_device(), mac="240ac4abcdef", write_board=cable_pulled)
    assert registry.list_devices(AARHUS) == []
    assert [a.action for a in registry.audit_log(AARHUS)] == ["device.remove", "device.enroll"]
    rec, _ = enroll_board(registry, AARHUS, new_device(), mac="240ac4abcdef", write_board=lambda c: None)
    assert rec.state == "enrolled"


def test_a_second_enrollment_of_a_board_is_a_conflict_before_its_board_is_touched(registry):
    enroll_board(registry, AARHUS, new_device(), mac="240ac4abcdef")
    touched = []
    with pytest.raises(Conflict):
        enroll_board(registry, AARHUS, new_device(), mac="240ac4abcdef", write_board=touched.append)
    assert touched == []


# -- concurrency ---------------------------------------------------------------------------------------

def _race(n, fn):
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        barrier.wait()
        try:
            results[i] = fn(i)
        except Exception as e:  # noqa: BLE001 - the test looks at what each got
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_concurrent_enrollments_of_one_dev_eui_one_wins(registry, db_url, key):
    # Two registries (two connections pools, as two processes would have) insert the same DevEUI at once;
    # add_devices has no pre-check, so the unique constraint decides.
    regs = [registry, Registry.open(db_url, key=key)]
    try:
        ident = new_identity(mac="240ac4000042")
        results = _race(2, lambda i: regs[i].add_device(AARHUS, new_device(site=f"site {i}"), ident))
    finally:
        regs[1].close()
    wins = [r for r in results if not isinstance(r, Exception)]
    losses = [r for r in results if isinstance(r, Exception)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert isinstance(losses[0], Conflict) and "240AC4FFFE000042" in losses[0].message
    assert [d.site for d in registry.list_devices(AARHUS)] == [wins[0].site]
    assert len(registry.audit_log(AARHUS)) == 1


def test_many_concurrent_enroll_board_calls_one_wins(registry):
    results = _race(4, lambda i: enroll_board(registry, AARHUS, new_device(site=f"s{i}"), mac="240ac4000043",
                                              write_board=lambda c: None))
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Conflict) for r in results if isinstance(r, Exception)), results
    assert registry.count_devices(AARHUS) == 1
