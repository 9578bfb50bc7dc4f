"""`fleet station`: every running virtual board (in download mode: the image route) flashed in parallel, one
row each."""

import json

import pytest

from e2e_tools import run_fleet

pytestmark = pytest.mark.usefixtures("frozen_sources")


def test_station_provisions_three_virtual_boards_in_parallel(make_board):
    boards = [make_board() for _ in range(3)]
    for b in boards:
        b.bootloader()
    proc = run_fleet("station", "--no-usb", "--json", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert sorted(r["key"] for r in rows) == sorted(b.name for b in boards)
    for r in rows:
        assert r["ok"] and r["result"] == "ok"
        assert r["flash"]["self_test"]["ok"]
        assert r["flash"]["transfer"]["written"] and r["flash"]["image"]["vfs"]


def test_station_table_names_each_port(make_board):
    board = make_board()
    board.bootloader()
    proc = run_fleet("station", "--no-usb", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert board.name in proc.stdout and "DevEUI" in proc.stdout
    # run again (the other boards fixed): this one runs its app with the release's files, and is left alone
    again = run_fleet("station", "--no-usb", "--json", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    [row] = json.loads(again.stdout)
    assert row["ok"] and row["result"].startswith("already flashed with this release")


def test_station_with_wrong_board_fails_each_row(make_board):
    make_board().bootloader()
    proc = run_fleet("station", "--no-usb", "--board", "heltec_v3", "--json", timeout=300)
    assert proc.returncode == 51
    [row] = json.loads(proc.stdout)
    assert not row["ok"] and "not heltec_v3" in row["result"]


def test_station_loads_each_board_file_once_for_all_its_boards(make_board, monkeypatch):
    from fleet import boards as board_files
    from fleet.cli.station import virtual_targets
    from provisioning.station import provision_all

    made = set()
    for _ in range(2):
        b = make_board()
        b.bootloader()
        made.add(b.name)
    loads = []
    real_load = board_files.load
    monkeypatch.setattr(board_files, "load", lambda name: loads.append(name) or real_load(name))
    targets = [t for t in virtual_targets() if t.key in made]
    results = provision_all(targets)
    assert [r.ok for r in results] == [True, True], [r.message for r in results]
    assert loads == ["virtual"]


def test_station_via_repl_flashes_boards_running_micropython(make_board):
    board = make_board()
    proc = run_fleet("station", "--no-usb", "--via", "repl", "--json", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [row] = [r for r in json.loads(proc.stdout) if r["key"] == board.name]
    assert row["ok"] and row["flash"]["image"] is None
