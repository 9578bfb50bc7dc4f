"""The virtual board's network: its firmware's sockets reach nothing until its WLAN associates with an
access point of its scenario (fleet/sim/wlan.py), and then only the host's loopback."""

import json
import socket
import threading

import pytest

from e2e_tools import run_fleet
from fleet.resources import firmware_dir
from provisioning.deploy import bundle, deploy
from provisioning.session import Session
from lab.serialconsole import Console

AP = {"ssid": "skole-iot", "security": "wpa2", "password": "hemmelig-42", "rssi": -67,
      "associate_s": 0.6, "dhcp_s": 0.3}


def scenario(tmp_path, *aps, name="wifi.json"):
    path = tmp_path / name
    path.write_text(json.dumps({"description": "WiFi for the gate's tests", "wifi": {"aps": list(aps)}}))
    return str(path)


@pytest.fixture
def listener():
    """A TCP server on the host's loopback that answers b"pong" to every connection."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.sendall(b"pong\n")
            c.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield srv.getsockname()[1]
    stop.set()
    srv.close()


def _console(board):
    c = Console(board.port, timeout=20)
    board.wait_prompt()
    c.raw_repl()
    return c


TRY = """
import socket
def try_connect(port):
    try:
        a = socket.getaddrinfo('127.0.0.1', port)[0][-1]
        s = socket.socket()
        s.settimeout(2)
        s.connect(a)
        r = s.readline()
        s.close()
        return r.decode().strip()
    except OSError as e:
        return 'OSError %s' % e.args[0]
def try_name():
    try:
        socket.getaddrinfo('localhost', 80)
        return 'resolved'
    except OSError as e:
        return 'OSError %s' % e.args[0]
"""

JOIN = """
import network, time
w = network.WLAN(network.STA_IF)
w.active(True)
w.connect(%r, %r)
t0 = time.ticks_ms()
while w.status() == network.STAT_CONNECTING and time.ticks_diff(time.ticks_ms(), t0) < 10000:
    time.sleep_ms(50)
print(w.status(), w.isconnected())
"""


def test_no_socket_reaches_anything_before_association(make_board, tmp_path, listener):
    board = make_board(scenario=scenario(tmp_path, AP))
    c = _console(board)
    c.exec(TRY)
    # ESP32 with its WLAN down: a name cannot be resolved (-202), a connect is EHOSTUNREACH (118)
    assert c.exec(f"print(try_connect({listener}))").strip() == "OSError 118"
    assert c.exec("print(try_name())").strip() == "OSError -202"
    assert c.exec("import network\nw = network.WLAN(network.STA_IF)\nprint(w.active(), w.status(), w.isconnected())"
                  ).strip() == "False 1000 False"
    out = c.exec(JOIN % (AP["ssid"], AP["password"]))
    assert out.split() == ["1010", "True"]
    assert c.exec(f"print(try_connect({listener}))").strip() == "pong"
    assert c.exec("print(try_name())").strip() == "resolved"
    assert c.exec("print(w.status('rssi'), w.ifconfig()[0] != '0.0.0.0', w.config('ssid'))").split() == [
        "-67", "True", "skole-iot"]
    # only the host's loopback: any other address is unreachable
    out = c.exec("s = socket.socket()\ntry:\n s.connect(socket.getaddrinfo('10.1.2.3', 80)[0][-1])\n"
                 "except OSError as e:\n print('OSError', e.args[0])")
    assert out.strip() == "OSError 118"
    c.exec("w.active(False)")
    assert c.exec(f"print(try_connect({listener}))").strip() == "OSError 118"
    st = board.status()["wlan"]
    assert st["gated"] and not st["active"] and st["radio_on_ms"] > 0
    c.close()


def test_wrong_password_and_missing_ap_give_their_status(make_board, tmp_path, listener):
    board = make_board(scenario=scenario(tmp_path, AP))
    c = _console(board)
    assert c.exec(JOIN % (AP["ssid"], "not-the-password")).split() == ["202", "False"]  # STAT_WRONG_PASSWORD
    assert c.exec(JOIN % ("no-such-ap", "whatever1")).split() == ["201", "False"]  # STAT_NO_AP_FOUND
    c.exec(TRY)
    assert c.exec(f"print(try_connect({listener}))").strip() == "OSError 118"
    c.close()


def test_scan_and_the_real_apis_surface(make_board, tmp_path):
    board = make_board(scenario=scenario(tmp_path, AP, {"ssid": "gjest", "security": "open", "rssi": -80}))
    c = _console(board)
    out = c.exec("import network\nw = network.WLAN(network.WLAN.IF_STA)\nw.active(True)\n"
                 "print(sorted((s[0].decode(), s[3], s[4]) for s in w.scan()))")
    assert out.strip() == "[('gjest', -80, 0), ('skole-iot', -67, 3)]"
    c.close()


def test_a_board_without_an_access_point_reaches_nothing(vboard, listener):
    c = _console(vboard)
    c.exec(TRY)
    assert c.exec(f"print(try_connect({listener}))").strip() == "OSError 118"
    assert c.exec(JOIN % ("anything", "whatever1")).split() == ["201", "False"]
    assert c.exec(f"print(try_connect({listener}))").strip() == "OSError 118"
    c.close()


def test_fleet_wifi_set_writes_credentials_the_firmware_joins_with(make_board, tmp_path, monkeypatch):
    board = make_board(scenario=scenario(tmp_path, AP))
    board.wait_prompt()
    monkeypatch.setenv("FLEET_WIFI_PASSWORD", AP["password"])
    proc = run_fleet("wifi", "set", "--port", board.port, "--ssid", AP["ssid"], "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"port": board.port, "networks": [AP["ssid"]]}
    assert AP["password"] not in proc.stdout + proc.stderr
    with Session(board.port) as s:
        deploy(s, {p: d for p, d in bundle(firmware_dir()).items() if p.startswith("/bysans/hal/")
                   or p in ("/bysans/__init__.py", "/bysans/wifi.py", "/bysans/device_spec.py")})
    c = _console(board)
    out = c.exec("from bysans import wifi, hal\n"
                 "link, outcome = wifi.up(hal.board())\nprint(outcome, link.ssid, link.rssi)\n"
                 "wifi.down(link)\nimport network\nprint(network.WLAN(network.STA_IF).active())")
    assert out.split() == ["OK", AP["ssid"], "-67", "False"]
    c.close()


def test_the_link_rate_paces_the_boards_sockets(make_board, tmp_path):
    """A scenario AP's rate_kbps: 8 KiB at 64 kbit/s (8 KB/s) take at least a second, simulated."""
    size = 8192
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def serve():
        c, _ = srv.accept()
        c.sendall(b"x" * size)
        c.close()
    threading.Thread(target=serve, daemon=True).start()
    board = make_board(scenario=scenario(tmp_path, dict(AP, rate_kbps=64)))
    c = _console(board)
    assert c.exec(JOIN % (AP["ssid"], AP["password"])).split() == ["1010", "True"]
    out = c.exec("import socket, time\ns = socket.socket()\ns.settimeout(5)\n"
                 f"s.connect(socket.getaddrinfo('127.0.0.1', {srv.getsockname()[1]})[0][-1])\n"
                 "t0 = time.ticks_ms()\nn = len(s.read())\nprint(n, time.ticks_diff(time.ticks_ms(), t0))")
    n, ms = map(int, out.split())
    assert n == size and ms >= 0.95 * size * 8 / 64, (n, ms)  # a lower bound: the pacing, not the host's speed
    c.close()
    srv.close()


def test_fleet_wifi_push_writes_the_registrys_networks_for_the_boards_site(make_board, tmp_path, monkeypatch):
    """The registry's networks for the board's site (from its /config/device.json) reach the board, and the
    firmware joins with them; no password in the output."""
    import base64
    import os

    monkeypatch.setenv("FLEET_DB", f"sqlite:///{tmp_path / 'registry.sqlite'}")
    monkeypatch.setenv("FLEET_SECRET_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("FLEET_OPERATOR", "tekniker")
    monkeypatch.setenv("FLEET_KOMMUNE", "751")
    board = make_board(scenario=scenario(tmp_path, AP))
    board.wait_prompt()
    monkeypatch.setenv("FLEET_WIFI_PASSWORD", "not-this-one")
    assert run_fleet("wifi", "networks", "add", "--ssid", "kommune-net").returncode == 0
    monkeypatch.setenv("FLEET_WIFI_PASSWORD", AP["password"])
    proc = run_fleet("wifi", "networks", "add", "--ssid", AP["ssid"], "--site", "Skovvangskolen")
    assert proc.returncode == 0, proc.stderr
    monkeypatch.delenv("FLEET_WIFI_PASSWORD")
    proc = run_fleet("wifi", "push", "--port", board.port)
    assert proc.returncode != 0 and "not a device file" in proc.stderr and "fleet enroll" in proc.stderr
    device = {"name": "env-0751-00000001", "kommune": "0751", "site": "skovvangskolen", "kind": "env",
              "board": "virtual", "sensors": []}
    with Session(board.port) as s:
        deploy(s, {"/config/device.json": json.dumps(device).encode()}
               | {p: d for p, d in bundle(firmware_dir()).items() if p.startswith("/bysans/hal/")
                  or p in ("/bysans/__init__.py", "/bysans/wifi.py", "/bysans/device_spec.py")})
    proc = run_fleet("wifi", "push", "--port", board.port, "--json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"port": board.port, "kommune": "0751", "site": "skovvangskolen",
                                       "networks": [AP["ssid"], "kommune-net"]}
    assert AP["password"] not in proc.stdout + proc.stderr
    c = _console(board)
    out = c.exec("from bysans import wifi, hal\n"
                 "link, outcome = wifi.up(hal.board())\nprint(outcome, link.ssid)\nwifi.down(link)")
    assert out.split() == ["OK", AP["ssid"]]
    c.close()
