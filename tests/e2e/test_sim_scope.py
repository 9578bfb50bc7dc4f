"""Two checkouts of the project never see or stop each other's virtual boards."""

import subprocess
import sys
import venv


from fleet.sim import manager


def _root_of(python, env):
    return subprocess.run([python, "-c", "from fleet.sim.manager import sim_root; print(sim_root())"], env=env,
                          capture_output=True, text=True, check=True).stdout.strip()


def test_each_environment_gets_its_own_default_root(tmp_path, monkeypatch):
    """A second environment (as a second checkout's .venv) resolves another default root."""
    other = tmp_path / "checkout2" / ".venv"
    venv.EnvBuilder(system_site_packages=True, with_pip=False).create(other)
    env = {k: v for k, v in __import__("os").environ.items() if k != "BYSANS_SIM_DIR"}
    env["XDG_STATE_HOME"] = str(tmp_path / "state")
    env["PYTHONPATH"] = str(manager.Path(manager.__file__).parents[2])
    mine, theirs = _root_of(sys.executable, env), _root_of(str(other / "bin" / "python"), env)
    assert mine != theirs
    assert theirs.startswith(str(tmp_path / "state" / "bysans" / "sim" / "checkout2-"))


def test_stop_all_in_one_scope_leaves_the_other_running(tmp_path, monkeypatch):
    monkeypatch.delenv("BYSANS_SIM_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "a" / ".venv"))
    a = manager.start(names=["scoped-a"])[0]
    try:
        monkeypatch.setattr(sys, "prefix", str(tmp_path / "b" / ".venv"))
        assert [b.name for b in manager.running()] == []
        assert manager.stop_all() == []
        monkeypatch.setattr(sys, "prefix", str(tmp_path / "a" / ".venv"))
        assert [b.name for b in manager.running()] == ["scoped-a"]
        assert a.status()["state"] != "stopped"
    finally:
        monkeypatch.setattr(sys, "prefix", str(tmp_path / "a" / ".venv"))
        manager.stop_all()
