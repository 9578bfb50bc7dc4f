#!/usr/bin/env python3
"""The product in a few minutes, on three virtual boards, narrated with what each role types.

A kommune enrolls a pallet of bins from a CSV file; the fleet admin makes keys, signs release 1.0.0 and
serves it; a technician flashes the boards, puts each on OTA for its device and configures it as a waste
node; the nodes send readings, which `fleet serve` stores; the admin signs release 1.1.0, whose own
self-test refuses a board with a tired battery, and rolls it out: two bins confirm it, the third rolls
back by itself; `fleet status`, the rollout's status and the dashboard's data show it all.

Every `$ ...` line printed is exactly what runs (split with shlex; a line ending in ` &` runs in the
background until the end). The radio hop is the one part played by the demo: the nodes hand their uplinks
to the virtual radio (`fleet sim uplinks`), and the demo delivers them to `fleet serve`'s OS2iot route as
a network server's HTTP push would (docs/ingest.md). Everything lives in a private temporary folder (its
own virtual boards, registry, keys and passphrase), removed at the end with every board and server.
"""

import argparse
import base64
import datetime
import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SPEED = 30  # the boards' clocks run 30 times faster: a node reading every 2 minutes wakes every 4 s
PALLET = """kommune,site,kind,latitude,longitude
751,Bispetorv 3,waste,56.1567,10.2108
751,Mølleparken,waste,56.1540,10.2040
751,Ryesgade 1,waste,56.1522,10.2071
"""
NODE = {"kind": "waste", "interval_s": 120, "batch_max_age_s": 240, "ota_every_s": 120}
# release 1.1.0's own self-test (bysans/checks.py: a release may carry one, docs/ota.md)
CHECKS = '''# Release 1.1.0 reads its sensors more often: it refuses to run on a battery below 3.5 V, where a node
# would not last until its next service visit. A failure here rolls the board back by itself.
MIN_MV = 3500


def run(board):
    from bysans.drivers.battery import from_board

    b = from_board(board)
    mv = b.read_mv() if b is not None else None
    if mv is None or mv < MIN_MV:
        raise ValueError("battery %s mV, this release needs %d" % (mv, MIN_MV))
'''


class DemoFailed(Exception):
    pass


class Monitor:
    """A serial monitor on a board, as a technician keeps one open: reads what the board prints (a board
    whose output nobody reads stops, like a real one whose USB buffer is full)."""

    def __init__(self, name: str, port: str):
        import serial

        self.name = name
        self.ser = serial.Serial(port, 115200, timeout=0.2)
        self.text = ""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        while not self.stop.is_set():
            try:
                self.text += self.ser.read(4096).decode(errors="replace")
            except Exception:  # noqa: BLE001 - the board was stopped
                return

    def lines(self, word: str) -> list[str]:
        return [ln.strip() for ln in self.text.splitlines() if ln.startswith("bysans") and word in ln]

    def close(self):
        self.stop.set()
        self.thread.join(timeout=2)
        self.ser.close()


class Demo:
    def __init__(self, con: Console, base: Path, record: Path | None):
        self.con = con
        self.base = base
        self.work = base / "work"
        self.work.mkdir()
        self.record = record
        self.ran = []
        self.background = []
        self.monitors = []
        self.env = dict(os.environ,
                        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                        BYSANS_SIM_DIR=str(base / "sim"),
                        FLEET_DB=f"sqlite:///{base / 'registry.sqlite'}",
                        FLEET_KEYS_DIR=str(base / "keys"),
                        FLEET_KEY_PASSPHRASE=secrets.token_urlsafe(16),
                        FLEET_SECRET_KEY=base64.b64encode(os.urandom(32)).decode(),
                        FLEET_OPERATOR="demo",
                        XDG_DATA_HOME=str(base / "data"), XDG_CONFIG_HOME=str(base / "config"),
                        XDG_STATE_HOME=str(base / "state"), COLUMNS="110")
        for k in ("FLEET_KOMMUNE", "FLEET_ROLE", "FLEET_REPO"):
            self.env.pop(k, None)

    # ---- narration and commands ------------------------------------------------------------------------

    def role(self, who: str, what: str):
        self.con.print()
        self.con.rule(f"[bold]{who}[/bold]: {what}", align="left")

    def say(self, text: str):
        self.con.print(text, highlight=False)

    def run(self, line: str, *, show: int = 12, quiet: bool = False) -> str:
        """Prints `$ line`, runs exactly that, shows (the first `show` lines of) its output."""
        self.con.print(f"[bold cyan]$ {line}[/bold cyan]", highlight=False, soft_wrap=True)
        t0 = time.monotonic()
        r = subprocess.run(shlex.split(line), cwd=self.work, env=self.env, capture_output=True, text=True,
                           timeout=300, stdin=subprocess.DEVNULL)
        self.ran.append({"line": line, "returncode": r.returncode, "seconds": round(time.monotonic() - t0, 1)})
        if r.returncode != 0:
            raise DemoFailed(f"`{line}` ended with exit code {r.returncode}:\n{r.stdout}{r.stderr}")
        if not quiet:
            self._show(r.stdout, show)
        return r.stdout

    def run_all(self, lines: list[str], *, show: int = 4) -> list[str]:
        """Several commands at once, as a technician with several boards on the bench runs them."""
        for line in lines:
            self.con.print(f"[bold cyan]$ {line}[/bold cyan]", highlight=False, soft_wrap=True)
        results = [None] * len(lines)

        def one(i):
            results[i] = subprocess.run(shlex.split(lines[i]), cwd=self.work, env=self.env, capture_output=True,
                                        text=True, timeout=300, stdin=subprocess.DEVNULL)

        t0 = time.monotonic()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(lines))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for line, r in zip(lines, results):
            self.ran.append({"line": line, "returncode": r.returncode, "seconds": round(time.monotonic() - t0, 1)})
            if r.returncode != 0:
                raise DemoFailed(f"`{line}` ended with exit code {r.returncode}:\n{r.stdout}{r.stderr}")
            self._show(r.stdout, show)
        return [r.stdout for r in results]

    def start(self, line: str) -> subprocess.Popen:
        """Prints `$ line` (ending in ' &') and starts it in the background."""
        assert line.endswith(" &")
        self.con.print(f"[bold cyan]$ {line}[/bold cyan]", highlight=False, soft_wrap=True)
        log = open(self.work / "serve.log", "w")
        p = subprocess.Popen(shlex.split(line[:-2]), cwd=self.work, env=self.env, stdout=log,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.background.append((p, log))
        self.ran.append({"line": line, "returncode": None})
        return p

    def _show(self, out: str, limit: int):
        if limit <= 0:
            return
        lines = out.rstrip("\n").splitlines()
        for ln in lines[:limit]:
            self.con.print("  " + ln, highlight=False, markup=False)
        if len(lines) > limit:
            self.con.print(f"  ... ({len(lines) - limit} more lines)", highlight=False)

    def close(self):
        for m in self.monitors:
            m.close()
        for p, log in self.background:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            log.close()
        subprocess.run([str(BIN / "fleet"), "sim", "stop", "--all"], env=self.env, capture_output=True, timeout=60)
        if self.record:
            self.record.write_text(json.dumps({"sandbox": str(self.base), "ran": self.ran}, indent=1))

    # ---- helpers that play the world ---------------------------------------------------------------------

    def server_url(self, timeout=30.0) -> str:
        log = self.work / "serve.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for word in log.read_text().split():
                if word.startswith("http://"):
                    return word
            time.sleep(0.1)
        raise DemoFailed(f"fleet serve did not start: {log.read_text()}")

    def push(self, url: str, token: str, dev_eui: str, uplinks: list[dict]) -> int:
        """What OS2iot's HTTP push does with a device's uplinks: one ChirpStack event each."""
        events = []
        for i, u in enumerate(uplinks):
            now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
            events.append({"deduplicationId": str(uuid.uuid4()), "time": now,
                           "deviceInfo": {"devEui": dev_eui.lower(), "deviceName": dev_eui.lower(),
                                          "applicationName": "bysans-demo"},
                           "fCnt": i, "fPort": 1, "dr": 5, "confirmed": False,
                           "data": base64.b64encode(bytes.fromhex(u["hex"])).decode(),
                           "rxInfo": [{"gatewayId": "0016c001ff10d3f6", "rssi": -92, "snr": 7.5}]})
        req = urllib.request.Request(f"{url}/api/ingest/os2iot", data=json.dumps(events).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            r.read()
        return len(events)

    def api(self, url: str, token: str, path: str):
        req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.loads(r.read())


def wait_rollout(d: Demo, n: int, timeout: float) -> str:
    """Waits until the rollout's n devices are done (confirmed, failed or rolled back), reading the registry."""
    os.environ["FLEET_SECRET_KEY"] = d.env["FLEET_SECRET_KEY"]
    from fleet.rollout import OtaStore

    deadline = time.monotonic() + timeout
    while True:
        store = OtaStore.open(d.env["FLEET_DB"])
        try:
            c = store.status(kommune="751").as_dict()["counts"]
        finally:
            store.close()
        done = c["confirmed"] + c["failed"] + c["rolled_back"]
        if done >= n:
            return f"confirmed {c['confirmed']}, rolled back {c['rolled_back']}, failed {c['failed']}"
        if time.monotonic() > deadline:
            raise DemoFailed(f"the rollout did not finish within {timeout:g} s: {c}")
        time.sleep(1)


def story(d: Demo, args):
    con = d.con
    con.rule("[bold]Bysans: a day in the life of three waste bins in Aarhus")
    d.say("Three roles, one registry. Every [bold cyan]$[/bold cyan] line is what that person types, and it runs "
          "as shown.")

    d.role("Kommune (Aarhus, 751)", "enroll a pallet of bins from a CSV file")
    (d.work / "pallet.csv").write_text(PALLET)
    d.say("pallet.csv, from the delivery note (docs/formats/enrollment-csv.md):")
    d._show(PALLET, 10)
    out = d.run("fleet enroll --kommune 751 --csv pallet.csv --board virtual --labels labels --json", quiet=True)
    devices = [(r["dev_eui"], r["site"]) for r in json.loads(out)]
    for dev, site in devices:
        d.say(f"  enrolled {dev}  {site}   (AppKey sealed in the registry, QR label in labels/)")

    d.role("Fleet admin", "keys, release 1.0.0, the update server")
    d.run("fleet keys init-root", show=2)
    d.run("fleet keys add-release --kommune 751", show=2)
    d.run("fleet release build --board virtual --version 1.0.0 -o rel-1.0.0", show=2)
    d.run("fleet release sign rel-1.0.0 --kommune 751", show=2)
    d.run("fleet release publish rel-1.0.0 --repo updates", show=2)
    d.start("fleet serve --repo updates --port 0 &")
    url = d.server_url()
    d.say(f"  serving on {url}: check-ins, the update repository, uplink pushes and the dashboard")
    token = json.loads(d.run('fleet tokens create --kommune 751 --name "Aarhus dashboard" --json',
                             quiet=True))["token"]
    d.say("  a token for Aarhus' dashboard and data pushes (shown once; kept by the demo, not printed)")

    d.role("Technician", "flash the boards, put each on OTA for its device, install it")
    shutil.copy(ROOT / "scenarios" / "depot_wifi.json", d.work / "depot_wifi.json")
    d.say("The boards stand in a depot whose WiFi access point their scenario provides "
          "(scenarios/depot_wifi.json): a board has no network until its firmware joins a WLAN.")
    out = d.run(f"fleet sim start --count 3 --speed {SPEED} --scenario depot_wifi.json")
    port_of = dict(ln.split(": ", 1) for ln in out.splitlines() if ln.startswith("vb") and ": /" in ln)
    boards = list(port_of)
    if len(boards) != 3:
        raise DemoFailed(f"expected three boards, got: {out}")
    d.say("Each board into download mode, as a technician holds BOOT and taps RESET; then one esptool pass per "
          "board writes its whole filesystem, built here, and checks it:")
    d.run_all([f"fleet sim bootloader {b}" for b in boards], show=1)
    d.run("fleet station --no-usb --board virtual", show=8)
    d.say("Each board gets the device its QR label names (--device), the signed release in slot a, the root it "
          "will trust and a check-in key of its own:")
    d.run_all([f"fleet ota enable --port sim:{b} --release rel-1.0.0 --server {url} --device {dev} --kommune 751"
               for b, (dev, _site) in zip(boards, devices)], show=2)
    (d.work / "node.json").write_text(json.dumps(NODE) + "\n")
    d.say(f"The node's settings (docs/node.md): {json.dumps(NODE)}")
    for b in boards:
        d.run(f"mpremote connect {port_of[b]} fs mkdir :config + fs cp node.json :config/node.json", quiet=True)
    d.say("The depot's WiFi for their updates, the password from FLEET_WIFI_PASSWORD (never shown):")
    d.env["FLEET_WIFI_PASSWORD"] = "demo-only-passphrase"
    d.run_all([f"fleet wifi set --port sim:{b} --ssid depot-iot" for b in boards], show=1)
    d.say(f"Bin 3 ({devices[2][1]}) has a tired battery:")
    d.run(f"fleet sim set {boards[2]} battery_mv=3300", show=1)
    d.say("A serial monitor on each board (python -m serial.tools.miniterm PORT 115200), then each is reset: "
          "boot.py picks slot a, main.py runs the node.")
    d.monitors = [Monitor(b, port_of[b]) for b in boards]
    d.run_all([f"fleet sim reset {b}" for b in boards], show=1)

    d.role("The nodes", "read the bins and send")
    d.say(f"Each node wakes every 2 simulated minutes (the boards' clocks run {SPEED}x) and sends its readings "
          "every other wake. The radio hop is played here: the uplinks each board handed to its radio go to "
          "fleet serve's OS2iot route, as the network server's HTTP push would (docs/ingest.md).")
    time.sleep(args.wait)
    for m in d.monitors:
        said = m.lines(" wake ")
        d.say(f"  {m.name} said: " + (said[-1] if said else "(nothing yet)"))
    stored = 0
    outs = d.run_all([f"fleet sim uplinks {b} --json" for b in boards], show=0)
    for b, (dev, _site), out in zip(boards, devices, outs):
        ups = json.loads(out)
        ups = ups if isinstance(ups, list) else ups.get("uplinks", [])
        n = d.push(url, token, dev, ups)
        stored += n
        d.say(f"  {b} -> {dev}: {n} uplinks pushed")
    if stored == 0:
        raise DemoFailed("no node sent anything")

    d.role("Kommune", "what the bins say")
    d.run("fleet status --kommune 751", show=25)

    d.role("Fleet admin", "release 1.1.0, with its own self-test, rolled out to the three bins")
    app = d.work / "app-1.1.0"
    shutil.copytree(ROOT / "firmware", app, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (app / "bysans" / "checks.py").write_text(CHECKS)
    (app / "bysans" / "version.py").write_text('VERSION = "1.1.0"\n')
    d.say("app-1.1.0: the app with bysans/version.py saying 1.1.0, and bysans/checks.py: the release refuses a "
          "battery below 3.5 V (its self-test, run on the "
          "first boot of the new slot)")
    d.run("fleet release build --board virtual --version 1.1.0 --src app-1.1.0 -o rel-1.1.0", show=2)
    d.run("fleet release sign rel-1.1.0 --kommune 751", show=2)
    d.run("fleet release publish rel-1.1.0 --repo updates", show=2)
    d.run("fleet rollout start --release 1.1.0 --kommune 751 --waves 100% --halt-at 50% --repo updates", show=4)
    d.say("Each node checks in by itself after its readings (every wake here, once a day by "
          "default): it takes 1.1.0, resets into it and runs its self-test. Waiting for the three...")
    outcome = wait_rollout(d, len(boards), args.rollout_timeout)
    for m in d.monitors:
        said = [ln for ln in m.lines("ota:") if "not due" not in ln]
        d.say(f"  {m.name} said: " + (said[-1] if said else "(nothing yet)"))
    d.say(f"  (the registry: {outcome})")
    d.run("fleet rollout status --kommune 751 --devices", show=10)

    d.role("Kommune", "status and dashboard")
    d.run("fleet status --kommune 751", show=30)
    dash = d.api(url, token, "/api/dashboard")
    d.say(f"The dashboard: {url}/dashboard (paste the kommune's token). Its data, GET /api/dashboard:")
    summary = {k: (len(v) if isinstance(v, list) else v) for k, v in dash.items() if not isinstance(v, dict)}
    d.say("  " + json.dumps(summary, sort_keys=True, default=str)[:400])
    ro = dash.get("rollouts") or dash.get("rollout")
    if ro:
        d.say("  rollout: " + json.dumps(ro, sort_keys=True, default=str)[:300])

    d.role("Done", "stop the boards and the server")
    d.run("fleet sim stop --all", show=2)
    d.say("\nMore: docs/README.md (a page per role), docs/ota.md (rollouts), docs/ingest.md (readings), "
          "docs/virtual-board.md.")
    d.say("[bold green]demo ok[/bold green]")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--wait", type=float, default=12.0, help="seconds the nodes run before their uplinks are read")
    ap.add_argument("--rollout-timeout", type=float, default=150.0, help="seconds to wait for the nodes' update")
    ap.add_argument("--record", type=Path, help="write the commands run, with their exit codes, to this JSON file")
    args = ap.parse_args(argv)
    con = Console(highlight=False, width=None if sys.stdout.isatty() else 120)
    with tempfile.TemporaryDirectory(prefix="bysans-demo-") as tmp:
        demo = Demo(con, Path(tmp), args.record)
        try:
            story(demo, args)
        except DemoFailed as e:
            con.print(f"[red]demo failed:[/red] {e}", markup=True, highlight=False)
            return 1
        finally:
            demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
