"""A damaged or read-only registry is named as such, with where it is and what to do; a backup made with
`fleet registry backup` brings it back with `fleet registry restore`, and nothing is lost on the way."""

import base64
import json
import os
import subprocess

import pytest

from fleet.cli import main
from fleet.errors import RegistryDamaged, RegistryReadOnly

ENROLL = ["enroll", "--kommune", "751", "--site", "Park Allé 1", "--kind", "waste", "--board", "virtual",
          "--no-board"]


@pytest.fixture
def env(tmp_path, monkeypatch):
    e = dict(FLEET_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(), FLEET_OPERATOR="anna",
             FLEET_KOMMUNE="751", FLEET_DB=str(tmp_path / "registry.sqlite"))
    for k, v in e.items():
        monkeypatch.setenv(k, v)
    return e


@pytest.fixture
def fleet(capsys, monkeypatch):
    """Runs `fleet ARGS` in this process (as the command line does) with the environment given."""

    def run(env, *args):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        try:
            main(list(args))
            code = 0
        except SystemExit as e:
            code = e.code
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return run


def _short_error(p):
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("error: ") and lines[1].startswith("hint: "), p.stderr
    return lines


def test_a_damaged_registry_says_so_where_and_how_to_restore_it(env, fleet, tmp_path):
    (tmp_path / "registry.sqlite").write_bytes(b"this is not an SQLite file, it was overwritten by accident\n" * 100)
    for args in (["devices", "list"], ENROLL, ["status"]):
        p = fleet(env, *args)
        assert p.returncode == RegistryDamaged.exit_code, p.stderr
        err, hint = _short_error(p)
        assert "damaged" in err and str(tmp_path / "registry.sqlite") in err
        assert "fleet registry restore" in hint
    p = fleet(env, "devices", "list", "--json")
    e = json.loads(p.stderr)
    assert e["kind"] == "RegistryDamaged" and e["exit_code"] == RegistryDamaged.exit_code


def test_fleet_serve_on_a_damaged_registry_answers_503_and_says_so(env, tmp_path):
    """The server's own database is no fault of the board or the kommune asking: 503, not 400."""
    import urllib.error
    import urllib.request

    from fleet.serve.app import ServeContext, build_app
    from fleet.serve.server import Server

    (tmp_path / "registry.sqlite").write_bytes(b"overwritten by accident\n" * 100)
    with Server(build_app(ServeContext(db_url=f"sqlite:///{tmp_path / 'registry.sqlite'}"))) as srv:
        for path, body in (("/api/devices", None), ("/api/checkin", b'{"device": "70B3D57ED0000001"}')):
            req = urllib.request.Request(srv.url + path, body, {"Authorization": "Bearer bys_00000000_" + "A" * 43})
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(req, timeout=10)
            answer = json.loads(e.value.read())
            assert e.value.code == 503 and "damaged" in answer["error"], (path, answer)
            assert "fleet registry restore" in answer["hint"]


def test_a_read_only_registry_says_read_only(env, fleet, tmp_path, monkeypatch):
    assert fleet(env, *ENROLL).returncode == 0
    monkeypatch.chdir(tmp_path)
    ro = dict(env, FLEET_DB=f"sqlite:///file:{tmp_path / 'registry.sqlite'}?mode=ro&uri=true")
    p = fleet(ro, *ENROLL)
    assert p.returncode == RegistryReadOnly.exit_code, p.stderr
    err, hint = _short_error(p)
    assert "cannot be written" in err and "database server is running" not in p.stderr
    assert "writable" in hint
    assert not (tmp_path / "file:").exists()  # a URI filename is SQLite's to read, no folder to make


def test_backup_then_damage_then_restore_brings_every_device_back(env, fleet, tmp_path):
    for site in ("Park Allé 1", "Bispetorv 3"):
        assert fleet(env, *ENROLL[:4], site, *ENROLL[5:]).returncode == 0
    before = json.loads(fleet(env, "devices", "list", "--json").stdout)
    p = fleet(env, "registry", "backup", str(tmp_path / "b.sqlite"), "--json")
    assert p.returncode == 0, p.stderr
    made = json.loads(p.stdout)
    assert made["revision"] and (tmp_path / "b.sqlite").stat().st_mode & 0o077 == 0
    assert fleet(env, "registry", "backup", str(tmp_path / "b.sqlite")).returncode != 0  # never overwrites
    assert fleet(env, "registry", "check", str(tmp_path / "b.sqlite")).returncode == 0

    reg = tmp_path / "registry.sqlite"
    data = bytearray(reg.read_bytes())
    data[:16] = b"garbage garbage "
    reg.write_bytes(bytes(data))
    assert fleet(env, "registry", "check").returncode == RegistryDamaged.exit_code
    assert fleet(env, "registry", "restore", str(tmp_path / "garbage")).returncode != 0
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"x" * 4096)
    p = fleet(env, "registry", "restore", str(bad))
    assert p.returncode == RegistryDamaged.exit_code and reg.read_bytes()[:16] == b"garbage garbage "

    p = fleet(env, "registry", "restore", str(tmp_path / "b.sqlite"), "--json")
    assert p.returncode == 0, p.stderr
    kept = json.loads(p.stdout)["kept"]
    assert kept and open(kept, "rb").read(16) == b"garbage garbage "  # the replaced file is kept
    after = json.loads(fleet(env, "devices", "list", "--json").stdout)
    assert [d["dev_eui"] for d in after] == [d["dev_eui"] for d in before]
    assert fleet(env, *ENROLL).returncode == 0  # and it is a working registry again


def test_postgres_registries_are_pointed_to_pg_dump(env, fleet):
    p = fleet(dict(env, FLEET_DB="postgresql+psycopg://postgres@127.0.0.1:1/none"), "registry", "backup", "x")
    assert p.returncode == 2 and "pg_dump" in p.stderr
