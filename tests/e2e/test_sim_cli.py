"""`fleet sim` as a technician uses it: start, list, stop, and what happens on bad input."""

import json
import os

from e2e_tools import pid_alive, run_fleet


def _daemon_pids():
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                cmd = open(f"/proc/{p}/cmdline", "rb").read()
            except OSError:
                continue
            if b"fleet.sim.daemon" in cmd and os.environ["BYSANS_SIM_DIR"].encode() in cmd:
                pids.append(int(p))
    return pids


def _same_pty(path, ctime_ns) -> bool:
    try:
        return os.stat(path).st_ctime_ns == ctime_ns
    except FileNotFoundError:
        return False


def test_start_json_list_and_stop_all():
    r = run_fleet("sim", "start", "--count", "3", "--json")
    assert r.returncode == 0, r.stderr
    boards = json.loads(r.stdout)
    assert len(boards) == 3
    assert len({b["id"] for b in boards}) == 3
    for b in boards:
        assert os.path.exists(b["port"]) and b["booted"]
    made = {b["port"]: os.stat(b["port"]).st_ctime_ns for b in boards}
    listed = json.loads(run_fleet("sim", "list", "--json").stdout)
    assert {b["id"] for b in boards} <= {b["id"] for b in listed}
    interpreters = [b["interpreter_pid"] for b in boards]

    r = run_fleet("sim", "stop", "--all")
    assert r.returncode == 0
    assert json.loads(run_fleet("sim", "list", "--json").stdout) == []
    for b in boards:  # (another process may get the same pty number at once: then it is a new pty)
        assert not _same_pty(b["port"], made[b["port"]]), "the serial port must vanish with its board"
    assert not any(pid_alive(p) for p in interpreters)
    assert _daemon_pids() == []


def test_second_start_on_a_busy_name_is_refused():
    assert run_fleet("sim", "start", "--name", "busy").returncode == 0
    try:
        before = _daemon_pids()
        r = run_fleet("sim", "start", "--name", "busy")
        assert r.returncode == 4
        assert r.stderr.startswith("error: a virtual board named 'busy' is already running")
        assert "hint: stop it with 'fleet sim stop busy'" in r.stderr
        assert _daemon_pids() == before, "a refused start must leave no process behind"
    finally:
        run_fleet("sim", "stop", "busy")


def test_unknown_board_and_unknown_id_say_what_to_do():
    r = run_fleet("sim", "start", "--board", "esp8266-nonsense")
    assert r.returncode == 3
    assert "unknown board 'esp8266-nonsense'" in r.stderr and "known boards: " in r.stderr and "virtual" in r.stderr
    r = run_fleet("sim", "reset", "nosuchboard")
    assert r.returncode == 3
    assert "no virtual board named 'nosuchboard' is running" in r.stderr
    assert "fleet sim list" in r.stderr
    assert "Traceback" not in r.stderr
    assert _daemon_pids() == []


def test_status_reports_counters_and_reset_causes(vboard):
    r = run_fleet("sim", "status", vboard.name, "--json")
    st = json.loads(r.stdout)
    assert st["reset_cause"] == "power_on" and st["boots"] == {"power_on": 1}
    assert set(st["counters"]) >= {"host_to_board", "board_to_host"}
    r = run_fleet("sim", "reset", vboard.name)
    assert r.returncode == 0
    vboard.wait_booted()
    assert vboard.status()["boots"] == {"power_on": 1, "hard": 1}
    text = run_fleet("sim", "status", vboard.name).stdout  # for people: words, not a Python dict
    assert "boots: 1 hard, 1 power on;" in text and "{" not in text and "last reset hard" in text


def test_help_has_examples():
    for cmd in (["sim"], ["sim", "start"], ["sim", "list"], ["sim", "stop"], ["sim", "powercut"]):
        r = run_fleet(*cmd, "--help")
        assert r.returncode == 0 and "Example" in r.stdout, cmd
    r = run_fleet("--version")
    assert r.returncode == 0 and r.stdout.startswith("fleet, version ")
