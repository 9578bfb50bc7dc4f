"""What scripts and people read from the CLI: whole identifiers, plain rows when piped, JSON errors."""

import json

import pytest

from fleet.errors import NotFound, UsageError
from test_registry_support import key, key_env  # noqa: F401 (fixtures)
from test_registry_support import run_cli as run




@pytest.fixture
def enrolled(tmp_path, capsys, monkeypatch, key_env):
    db = f"sqlite:///{tmp_path / 'registry.db'}"
    monkeypatch.setenv("FLEET_DB", db)
    monkeypatch.setenv("FLEET_OPERATOR", "anna")
    monkeypatch.setenv("FLEET_KOMMUNE", "751")
    monkeypatch.setenv("COLUMNS", "80")
    csv = tmp_path / "pallet.csv"
    csv.write_text("kommune,site,kind\n" + "".join(f"751,Ryesgade {i} med en meget lang adresse i Aarhus C,waste\n"
                                                   for i in range(3)))
    code, out, err = run(["enroll", "--csv", str(csv), "--board", "virtual", "--json"], capsys)
    assert code == 0, err
    return [d["dev_eui"] for d in json.loads(out)]


def test_piped_device_list_is_one_whole_row_per_device(enrolled, capsys):
    code, out, err = run(["devices", "list"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split("\t")[:3] == ["dev_eui", "kommune", "site"]
    assert len(lines) == 1 + len(enrolled)
    assert [ln.split("\t")[0] for ln in lines[1:]] == enrolled
    assert all("Ryesgade" in ln and "Aarhus C" in ln for ln in lines[1:])


def test_terminal_table_never_cuts_a_dev_eui(enrolled, capsys, monkeypatch):
    monkeypatch.setattr("fleet.cli.output.is_terminal", lambda: True)
    code, out, err = run(["devices", "list"], capsys)
    assert code == 0, err
    for eui in enrolled:
        assert eui in out


def test_errors_are_json_with_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FLEET_DB", f"sqlite:///{tmp_path / 'r.db'}")
    code, out, err = run(["boards", "show", "nope", "--json"], capsys)
    assert code == NotFound.exit_code and out == ""
    e = json.loads(err)
    assert e["exit_code"] == NotFound.exit_code and "nope" in e["error"] and e["hint"] and e["kind"] == "NotFound"
    code, out, err = run(["devices", "kommuner", "--region", "Atlantis", "--json"], capsys)
    e = json.loads(err)
    assert code == UsageError.exit_code == e["exit_code"] and "Atlantis" in e["error"] and "Midtjylland" in e["hint"]
    code, out, err = run(["devices", "list", "--state", "x", "--bogus", "--json"], capsys)
    e = json.loads(err)
    assert code == 2 and e["exit_code"] == 2 and "bogus" in e["error"] and "--help" in e["hint"]


def test_errors_without_json_are_two_lines(capsys):
    code, out, err = run(["boards", "show", "nope"], capsys)
    assert code == NotFound.exit_code
    assert err.splitlines()[0].startswith("error: ") and err.splitlines()[1].startswith("hint: ")


def test_every_command_that_prints_data_takes_json():
    """Scripts read every command's output as JSON: only a server and a code generator have no --json."""
    import click

    from fleet.cli import cli

    ctx = click.Context(cli)

    def walk(cmd, path):
        if isinstance(cmd, click.Group):
            for n in cmd.list_commands(ctx):  # the CLI loads a command's module when asked for it
                yield from walk(cmd.get_command(ctx, n), path + [n])
        else:
            yield " ".join(path), cmd

    without = {p for p, c in walk(cli, []) if not any("--json" in o.opts for o in c.params)}
    assert without <= {"serve", "codec export"}, sorted(without)


def test_a_terminal_list_longer_than_the_screen_streams_through_the_pager(enrolled, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("fleet.cli.output.is_terminal", lambda: True)
    monkeypatch.setenv("LINES", "8")  # a screen shorter than the list: the pager (plain stdout under pytest)
    csv = tmp_path / "more.csv"
    csv.write_text("kommune,site,kind\n" + "".join(f"751,Vej {i},env\n" for i in range(20)))
    code, out, err = run(["enroll", "--csv", str(csv), "--board", "virtual", "--json"], capsys)
    assert code == 0, err
    euis = enrolled + [d["dev_eui"] for d in json.loads(out)]
    code, out, err = run(["devices", "list"], capsys)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["dev_eui", "kommune", "site"] and "│" not in out  # columns, not a drawing
    assert [ln.split()[0] for ln in lines[1:]] == euis  # one whole DevEUI per line, each once
    assert len({ln.index(" 0751 ") for ln in lines[1:]}) == 1  # aligned


def test_the_pager_gets_its_first_screen_before_the_rest_is_read(monkeypatch):
    from fleet.cli import output

    monkeypatch.setattr(output, "is_terminal", lambda: True)
    monkeypatch.setenv("LINES", "20")
    read = [0]

    def rows():
        for i in range(50_000):
            read[0] = i + 1
            yield [f"70B3D57ED{i:07X}", "0751 Aarhus", f"site {i}"]

    seen = {}

    def pager(gen):
        seen["header"], seen["first"] = next(gen), next(gen)
        seen["read_then"] = read[0]
        seen["rest"] = list(gen)

    monkeypatch.setattr(output.click, "echo_via_pager", pager)
    assert output.print_table(rows(), ("dev_eui", "kommune", "site")) == 50_000
    assert seen["header"].startswith("dev_eui") and seen["first"].startswith("\n70B3D57ED0000000  0751 Aarhus")
    assert seen["read_then"] <= 1001  # the first screen went out after at most the rows its widths need
    assert (seen["first"] + "".join(seen["rest"])).count("\n") == 50_000


def test_a_flash_bar_counts_bytes_and_its_self_test_says_where_it_is():
    """The self-test, a step and no transfer, showed as a '1/1 bytes' bar."""
    from rich.console import Console
    from rich.progress import Progress

    from fleet.cli.flash import STEP_STAGES, bar_columns

    console = Console(record=True, width=100)
    bars = Progress(*bar_columns(), console=console)
    tasks = {stage: bars.add_task(f"virtual {stage}", total=total, step=stage in STEP_STAGES)
             for stage, total in (("app", 2345), ("self-test", 1))}
    bars.update(tasks["app"], completed=2345)

    def shown():
        console.print(bars.make_tasks_table(bars.tasks))
        return console.export_text().splitlines()

    app, test = shown()
    assert app.startswith("virtual app") and app.endswith("2.3/2.3 kB")
    assert test.startswith("virtual self-test") and test.rstrip().endswith("running") and "bytes" not in test
    bars.update(tasks["self-test"], completed=1)
    _, test = shown()
    assert test.rstrip().endswith("done") and "1/1" not in test


def test_terminal_alerts_never_cut_a_dev_eui(enrolled, capsys, monkeypatch):
    """DevEUIs were cut at 80 columns in `fleet alerts` as in `devices list`."""
    from fleet.registry import Registry
    from fleet.telemetry import TelemetryStore, parse_event
    from telemetry_support import waste_event

    reg = Registry.open()
    try:
        events = [waste_event(eui, 1, fill_bp=9500) for eui in enrolled]
        assert TelemetryStore(reg).ingest([parse_event(e, "chirpstack") for e in events]).stored == len(events)
    finally:
        reg.close()
    monkeypatch.setattr("fleet.cli.output.is_terminal", lambda: True)
    code, out, err = run(["alerts"], capsys)
    assert code == 0, err
    assert "full" in out
    for eui in enrolled:
        assert eui in out, out


def test_a_forecast_whose_moment_passed_reads_as_overdue_not_as_a_forecast(enrolled, capsys, monkeypatch):
    """A bin last heard two days ago, filling at 3 %/h from 60 %: its "full at" is a day and a half gone."""
    from datetime import datetime, timedelta, timezone

    from fleet.registry import Registry
    from fleet.telemetry import TelemetryStore, parse_event
    from telemetry_support import waste_event

    two_days_ago = datetime.now(timezone.utc) - timedelta(days=2)
    reg = Registry.open()
    try:
        event = waste_event(enrolled[0], 1, fill_bp=6000, rate=300, at=two_days_ago)
        assert TelemetryStore(reg).ingest([parse_event(event, "chirpstack")]).stored == 1
    finally:
        reg.close()
    code, out, err = run(["status"], capsys)
    assert code == 0, err
    [line] = [ln for ln in out.splitlines() if enrolled[0] in ln and "full" in ln]
    assert "expected full since" in line and "(no reading since)" in line and "full at" not in line
    code, out, err = run(["alerts", "--check"], capsys)  # the sweep finds it silent; its alert says the same
    assert code == 0, err
    [line] = [ln for ln in out.splitlines() if enrolled[0] in ln]
    assert "silent" in line and "expected full since" in line and "(full at" not in line
