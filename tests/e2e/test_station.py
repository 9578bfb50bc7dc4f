"""`fleet station`: every running virtual board flashed in parallel, one row each."""

import json

import pytest

from conftest import run_fleet

pytestmark = pytest.mark.usefixtures("frozen_sources")


def test_station_provisions_three_virtual_boards_in_parallel(make_board):
    boards = [make_board() for _ in range(3)]
    proc = run_fleet("station", "--no-usb", "--json", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = json.loads(proc.stdout)
    assert sorted(r["key"] for r in rows) == sorted(b.name for b in boards)
    for r in rows:
        assert r["ok"] and r["result"] == "ok"
        assert r["flash"]["self_test"]["ok"]
        assert r["flash"]["transfer"]["written"]


def test_station_table_names_each_port(make_board):
    board = make_board()
    proc = run_fleet("station", "--no-usb", timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert board.name in proc.stdout and "DevEUI" in proc.stdout


def test_station_with_wrong_board_fails_each_row(make_board):
    make_board()
    proc = run_fleet("station", "--no-usb", "--board", "heltec_v3", "--json", timeout=300)
    assert proc.returncode == 51
    [row] = json.loads(proc.stdout)
    assert not row["ok"] and "not heltec_v3" in row["result"]


def test_station_loads_each_board_file_once_for_all_its_boards(make_board, monkeypatch):
    from fleet import boards as board_files
    from fleet.cli.station import virtual_targets
    from provisioning.station import provision_all

    made = {make_board().name for _ in range(2)}
    loads = []
    real_load = board_files.load
    monkeypatch.setattr(board_files, "load", lambda name: loads.append(name) or real_load(name))
    targets = [t for t in virtual_targets() if t.key in made]
    results = provision_all(targets)
    assert [r.ok for r in results] == [True, True], [r.message for r in results]
    assert loads == ["virtual"]
