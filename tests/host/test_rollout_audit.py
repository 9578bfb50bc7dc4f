"""Every change an operator makes to a rollout (start, pause, resume, abort) names the operator and lands in
the registry's audit log, in the change's own transaction; through the library (SQLite and PostgreSQL) and
through `fleet rollout` (--operator, else FLEET_OPERATOR, else the login name, as `fleet devices`)."""

import os
import subprocess
import sys

import pytest

from fleet.errors import RolloutError, UsageError
from fleet.registry import Registry
from fleet.rollout import OtaStore
from test_registry_support import AARHUS, ODENSE, db_url, key  # noqa: F401 (fixtures)
from test_rollout import _repo, _report

DEV = "70B3D57ED0000001"


def _rollout_audit(reg, operator=AARHUS):
    """The rollout entries this operator may see, oldest first."""
    return [(a.operator, a.action, a.kommune_kode, a.changes, a.note)
            for a in reversed(reg.audit_log(operator)) if a.action.startswith("rollout.")]


def test_each_rollout_change_names_its_operator_in_the_audit_log(db_url, key, tmp_path):
    repo = _repo(tmp_path)
    reg = Registry.open(db_url, key=key)
    ota = OtaStore(reg.db)
    try:
        ota.checkin(_report(DEV), repo)
        ro = ota.start(kommune="751", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo, operator="anna")
        ota.pause(kommune="751", note="bins report odd levels", operator="bo")
        ota.resume(rollout_id=ro.id, operator="cy")
        ota.abort(kommune="751", note="replaced by 2.0.1", operator="dora")
        got = _rollout_audit(reg)
        assert got[0][:3] == ("anna", "rollout.start", "0751")
        assert got[0][3]["rollout_id"] == [None, ro.id] and got[0][3]["version"] == [None, "2.0.0"]
        assert got[0][3]["state"] == [None, "running"] and got[0][3]["manifest"] == [None, ro.manifest]
        assert got[1:] == [
            ("bo", "rollout.pause", "0751", {"rollout_id": [ro.id, ro.id], "state": ["running", "paused"]},
             "bins report odd levels"),
            ("cy", "rollout.resume", "0751", {"rollout_id": [ro.id, ro.id], "state": ["paused", "running"]}, None),
            ("dora", "rollout.abort", "0751", {"rollout_id": [ro.id, ro.id], "state": ["running", "aborted"]},
             "replaced by 2.0.1"),
        ]
        assert _rollout_audit(reg, ODENSE) == []  # another kommune's operator does not see them

        # a change that is refused writes no entry; nor does one without an operator
        with pytest.raises(RolloutError):
            ota.resume(kommune="751", operator="eve")
        for nobody in ("", "   ", None):
            with pytest.raises(UsageError):
                ota.pause(kommune="751", operator=nobody)
            with pytest.raises(UsageError):
                ota.start(kommune="751", version="2.0.0", waves=[1000], halt_at=1000, repo_dir=repo,
                          operator=nobody)
        with pytest.raises(TypeError):
            ota.abort(kommune="751")  # the operator is a required argument
        assert len(_rollout_audit(reg)) == 4
        assert ota.status(kommune="751").state == "aborted"
    finally:
        ota.close()
        reg.close()


def _fleet(*args, env):
    full = {k: v for k, v in os.environ.items() if k != "FLEET_OPERATOR"}
    p = subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *map(str, args)],
                       capture_output=True, text=True, timeout=60, env={**full, **env})
    assert p.returncode == 0, p.stdout + p.stderr
    return p


def test_fleet_rollout_names_the_operator_as_fleet_devices_does(tmp_path, key):
    from fleet.cli.devices import operator_name

    repo = _repo(tmp_path)
    url = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    s = OtaStore.open(url)
    s.checkin(_report(DEV), repo)
    s.close()
    db = ["--db", url]
    _fleet("rollout", "start", "--release", "2.0.0", "--kommune", "751", "--repo", repo, "--operator", "anna", *db,
           env={})
    _fleet("rollout", "pause", "--kommune", "751", "--note", "why not", *db, env={"FLEET_OPERATOR": "bo"})
    _fleet("rollout", "resume", "--kommune", "751", "--operator", "cy", *db, env={"FLEET_OPERATOR": "bo"})
    _fleet("rollout", "abort", "--kommune", "751", *db, env={})
    with Registry.open(url, key=key) as reg:
        got = [(who, what, note) for who, what, _, _, note in _rollout_audit(reg)]
    assert got == [("anna", "rollout.start", None), ("bo", "rollout.pause", "why not"),
                   ("cy", "rollout.resume", None), (operator_name(None), "rollout.abort", None)]
    s = OtaStore.open(url)
    assert s.status(kommune="751").state == "aborted"
    s.close()
