"""The OTA client on virtual boards against `fleet serve`'s routes: an end-to-end update (only the changed
file travels, the new slot confirms itself), every refusal of REFERENCE.md §6 with its reason in the next
check-in and the board unchanged, and a repository that is unreachable, slow, truncated or garbage."""

import socket
import threading
import time

import pytest

from fleet.release import repository
from fleet.rollout import OtaStore
from lab.ota import HEAP, Lab, Repl, provision

DEV = "70B3D57ED0000001"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("ota"))
    lab.r1 = lab.build("1.0.0")
    lab.r2 = lab.derive(lab.r1, "2.0.0")
    lab.publish(lab.r1)
    lab.serve()
    lab.store_ = OtaStore.open(lab.db_url)
    yield lab
    lab.store_.close()
    lab.stop()


def _board(make_board, lab, dev):
    b = make_board(heap=HEAP, scenario=lab.wifi_scenario)
    provision(b, lab.r1, lab.root1, lab.config(dev))
    r = Repl(b)
    r.run("import machine")  # boot.py and main.py have run at power-on; the slots exist only now
    r.c.write(b"\x02")       # friendly REPL, then reset: the board boots slot a as a board in the field does
    b.reset()
    r.reconnect()
    return b, r


def test_update_end_to_end_moves_only_the_changed_file_and_confirms(make_board, lab):
    b, r = _board(make_board, lab, DEV)
    before = r.state()
    assert (before["version"], before["slot"], before["trial"]) == ("1.0.0", "a", None)
    assert r.poll()["state"] == "confirmed"  # the channel holds what it runs: nothing to do
    assert lab.store_.device(DEV)["version"] == "1.0.0"

    lab.publish(lab.r2)
    assert r.poll() is None  # installed into slot b, switched, reset
    after = r.state()
    assert (after["version"], after["app"], after["slot"], after["trial"]) == ("2.0.0", "2.0.0", "b", None)
    assert after["path"] == "/b" and after["last"]["state"] == "confirmed"
    assert r.files_ok()
    assert r.poll()["state"] == "confirmed"
    d = lab.store_.device(DEV)
    assert (d["version"], d["slot"], d["state"]) == ("2.0.0", "b", "confirmed")
    assert "version.mpy" in r.run("import os\nprint(os.listdir('/b/bysans'))")


def _object(lab, rel, path):
    body = __import__("fleet.release.metadata", fromlist=["x"]).body_of((rel / "release.json").read_bytes())
    entry = next(e for e in body["files"] if e["path"] == path)
    return repository.object_path(lab.repo, entry["sha256"]), (rel / "files" / path).read_bytes()


def test_each_refusal_has_its_reason_in_the_check_in_and_the_board_is_unchanged(make_board, lab):
    dev = "70B3D57ED0000002"
    b, r = _board(make_board, lab, dev)
    r3 = lab.derive(lab.r1, "3.0.0")
    lab.publish(r3)  # its objects; each case below puts its own manifest into the channel
    good = (r3 / "release.json").read_bytes()
    obj, raw = _object(lab, r3, "bysans/version.mpy")
    z = obj.read_bytes()
    before = r.state()

    def case(reason, channel=good, object_bytes=None):
        lab.put_channel(channel)
        if object_bytes is not None:
            obj.write_bytes(object_bytes)
        try:
            out = r.poll()
        finally:
            obj.write_bytes(z)
        assert out is not None, f"{reason}: the board installed what it should have refused"
        assert (out["state"], out["reason"]) == ("failed", reason), out
        now = r.state()
        assert (now["version"], now["slot"], now["trial"], now["app"]) == (
            before["version"], before["slot"], None, before["app"])
        r.report()
        d = lab.store_.device(dev)
        assert (d["state"], d["reason"], d["version"]) == ("failed", reason, before["version"])

    case("BAD_HASH", object_bytes=repository.compress(raw[:-1] + bytes([raw[-1] ^ 1])))       # tampered file
    case("TOO_LONG", object_bytes=repository.compress(raw + b"\0" * 64))                        # longer file
    case("TOO_SHORT", object_bytes=repository.compress(raw[:-3]))                               # shorter file
    case("BAD_HASH", object_bytes=b"\x78\x9c" + b"not a deflate stream at all" * 4)             # garbage object
    case("BAD_SIGNATURE", channel=good.replace(b'"version":"3.0.0"', b'"version":"3.0.9"', 1))  # bad signature
    case("NOT_DELEGATED", channel=lab.signed_variant(r3, [lab.store.signer(lab.k101, lab.pp)]))  # other kommune's key
    case("DOWNGRADE", channel=lab.signed_variant(r3, counter=1))                                # lower counter
    case("EXPIRED", channel=lab.signed_variant(r3, expires=int(time.time()) - 60))              # expired
    case("WRONG_BOARD", channel=lab.signed_variant(r3, boards=["heltec_v3"]))                   # another board
    case("WRONG_KOMMUNE", channel=lab.signed_variant(r3, kommuner=["0727"]))                    # for another kommune
    case("MALFORMED", channel=b"<html>a captive portal</html>\n")                               # garbage metadata
    revoked = lab.signed_variant(r3, [lab.store.signer(lab.kold, lab.pp)])
    lab.revoke(lab.kold)
    case("REVOKED", channel=revoked)                                                            # revoked key
    # and the good release still installs afterwards
    lab.put_channel(good)
    assert r.poll() is None
    assert r.state()["version"] == "3.0.0" and r.files_ok()


class BadRepo:
    """A repository server that misbehaves: 'slow' (never answers), 'truncated' (announces more than it
    sends), 'garbage' (not HTTP)."""

    def __init__(self, mode):
        self.mode = mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            c.recv(4096)
            if self.mode == "truncated":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + b"{" * 100)
                c.close()
            elif self.mode == "garbage":
                c.sendall(b"\x00\xff\x13 this is not HTTP\r\n\r\n")
                c.close()
            # slow: keep the connection open and say nothing

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_bad_repositories_keep_the_board_running_and_the_check_in_says_why(make_board, lab):
    dev = "70B3D57ED0000003"
    b, r = _board(make_board, lab, dev)
    before = r.state()
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead_url = "http://127.0.0.1:%d" % dead.getsockname()[1]
    dead.close()  # nothing listens there
    for mode, reason in (("unreachable", "UNREACHABLE"), ("slow", "TIMEOUT"), ("truncated", "TRUNCATED"),
                         ("garbage", "GARBAGE")):
        bad = None if mode == "unreachable" else BadRepo(mode)
        try:
            r.set_config(lab.config(dev, repo=dead_url if bad is None else bad.url, timeout_s=1))
            out = r.poll()
        finally:
            if bad:
                bad.close()
        assert (out["state"], out["reason"]) == ("error", reason), out
        assert out["next_s"] > time.time(), "no back-off"
        now = r.state()
        assert (now["version"], now["slot"], now["trial"]) == (before["version"], before["slot"], None)
        r.set_config(lab.config(dev))
        r.report()
        d = lab.store_.device(dev)
        assert (d["state"], d["reason"]) == ("error", reason)
    # back-off grows with each failure in a row
    r.set_config(lab.config(dev, server=dead_url, retry_s=60))
    first = r.poll()
    second = r.poll()
    assert first["reason"] == second["reason"] == "UNREACHABLE"
    assert second["fails"] == first["fails"] + 1 and second["next_s"] - first["next_s"] >= 50
