"""A slot on trial is counted, self-tested and confirmed (or rolled back) by main.py on the board's real boots
only: mpremote's soft reset at the start of each command runs boot.py and not main.py, on a board as on the
virtual one, so a technician's sessions leave the trial as it is (docs/ota.md, step 5). On the plain virtual
board and on a TTGO whose slots are ROMFS images (boot.py mounts them at /a and /b in each session too)."""

import json

import pytest

from fleet import boards
from lab.ota import HEAP, Lab, Repl, provision

from e2e_tools import run_mpremote

SESSIONS = 4  # more than a trial's boots (MAX_TRIES, bysans/ota/slots.py): counting them would roll it back
BOOT_STATE = "import json\nprint(json.dumps(json.loads(open('/ota/boot.json').read().split(chr(10))[0])))"


@pytest.fixture(params=["virtual", "virtual_ttgo_rom"])
def setup(request, make_board, tmp_path):
    name = request.param
    kw = {"heap": HEAP}
    if name == "virtual_ttgo_rom":
        kw = {"interpreter": request.getfixturevalue("mp32rom"), "heap": boards.load(name)["heap"]}
    lab = Lab(tmp_path / "ota")
    try:
        lab.r1 = lab.build("1.0.0", board=name)
        lab.r2 = lab.derive(lab.r1, "2.0.0")
        lab.publish(lab.r1)
        lab.serve()
        b = make_board(board=name, scenario=lab.wifi_scenario, **kw)
        provision(b, lab.r1, lab.root1, lab.config("70B3D57ED0000091"))
        r = Repl(b)
        r.c.write(b"\x02")  # friendly REPL, then reset: the board boots slot a as a board in the field does
        b.reset()
        r.reconnect()
        yield lab, b, r
    finally:
        lab.stop()


def test_mpremote_sessions_leave_a_trial_slot_alone_and_its_next_boot_confirms_it(setup):
    lab, b, r = setup
    assert r.state()["slot"] == "a"
    lab.publish(lab.r2)
    assert r.poll(reboot=False)["state"] == "installed"  # switched to slot b, not reset yet
    r.close()
    trial = None
    for _ in range(SESSIONS):
        st = json.loads(run_mpremote(b.port, "exec", BOOT_STATE).stdout.strip().splitlines()[-1])
        assert (st["confirmed"], st["trial"], st["tries"], st["last"]) == ("a", "b", 0, None), st
        trial = trial or st["target"]
        assert st["target"] == trial
    # boot.py has run in each session: the confirmed slot is on sys.path (a ROM board's slots are mounted)
    out = run_mpremote(b.port, "exec", "import sys, bysans.version as v\nprint(sys.path[0], v.VERSION)")
    assert out.stdout.split() == ["/a", "1.0.0"]
    r = Repl(b)
    try:
        r.c.write(b"\x02")
        b.reset()  # the next real boot: main.py counts the trial, self-tests and confirms it
        r.reconnect()
        st = r.state()
        assert (st["slot"], st["trial"], st["version"], st["app"], st["path"]) == ("b", None, "2.0.0", "2.0.0", "/b")
        assert st["last"]["state"] == "confirmed" and st["last"]["target"] == trial
    finally:
        r.close()
