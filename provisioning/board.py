"""Asking a board what it is, and its self-test after flashing.

`identify` needs no app on the board: a virtual board names its board file through its native module
`_vboard`; an ESP32 names its chip in `sys.implementation._machine` ("Generic ESP32S3 module with ESP32S3")
and has a factory MAC (`machine.unique_id()`). `self_test` imports the app, builds the board object, scans
the I2C buses and reports every configured sensor as answering or not.
"""

import json
import re
from dataclasses import dataclass, field

from fleet import device_spec
from fleet.boards import Board
from fleet.errors import WrongBoard

from .session import Session, literal

_IDENTIFY = f"""import sys,binascii
try:
 import _vboard as v
 r=('virtual',v.board['name'],v.board.get('mac'))
except ImportError:
 import machine
 r=(sys.implementation._machine,None,binascii.hexlify(machine.unique_id()).decode())
try:
 import json
 f=open({device_spec.BOARD_FILE!r});n=json.load(f).get('name');f.close()
except Exception:
 n=None
print(repr(r+(n,)))
"""

# the app's own board object: sensors answer at the board file's addresses
_SELF_TEST = """import sys,json
r={'app':None,'board':None,'sensors':[],'error':None}
try:
 import bysans.app
 from bysans.version import VERSION
 from bysans.hal import board
 b=board();r['app']=VERSION;r['board']=b.name
 d=b.definition;seen={}
 for s in d.get('sensors',[]):
  bus=s['bus']
  if bus.startswith('i2c'):
   n=int(bus[3:])
   if n not in seen:seen[n]=b.i2c(n).scan()
   r['sensors'].append((s['type'],bus,s.get('address'),s.get('address') in seen[n]))
  else:
   r['sensors'].append((s['type'],bus,None,None))
except Exception as e:
 r['error']='%s: %s'%(type(e).__name__,e)
print(json.dumps(r))
"""


@dataclass(frozen=True)
class BoardIdentity:
    chip: str              # esp32, esp32s3, esp32c3, ..., or virtual
    machine: str           # what the board says it is
    board: str | None      # the board file it carries (/board.json, or the virtual board's own)
    mac: str | None        # 12 hex digits: the chip's factory MAC, None when it has no MAC of its own

    def as_dict(self) -> dict:
        return {"chip": self.chip, "machine": self.machine, "board": self.board, "mac": self.mac}


def _chip_of(machine: str) -> str:
    m = re.search(r"ESP32-?(S2|S3|C2|C3|C5|C6|H2|P4)?", machine.upper())
    if not m:
        return "unknown"
    return "esp32" + (m.group(1) or "").lower()


def identify(session: Session) -> BoardIdentity:
    machine, vname, mac, stored = literal(session.exec(_IDENTIFY).strip())
    if machine == "virtual":
        # A virtual board has a MAC of its own only when its board file gives one; the simulator's default
        # (the same on every virtual board) would give every board the same DevEUI.
        return BoardIdentity("virtual", "virtual board", vname, mac)
    return BoardIdentity(_chip_of(machine), machine, stored, mac)


def check_board(ident: BoardIdentity, board: Board, port: str):
    """Raises WrongBoard unless the board on the port can be `board`."""
    want = board.name
    if board.chip.name != ident.chip:
        said = f"a virtual board ('{ident.board}')" if ident.chip == "virtual" else f"an {ident.chip} ({ident.machine})"
        raise WrongBoard(f"the board on {port} is {said}, not {want} ({board.chip.name}); nothing was written")
    if ident.chip == "virtual" and ident.board != want:
        raise WrongBoard(f"the board on {port} is the virtual board '{ident.board}', not '{want}'; nothing was "
                         f"written")
    if ident.board and ident.board != want:
        raise WrongBoard(f"the board on {port} was set up as '{ident.board}', not '{want}'; nothing was written",
                         hint=f"if it really is a {want}, erase its flash first (esptool erase-flash) and flash it "
                              f"again")


@dataclass
class SelfTest:
    ok: bool
    app: str | None
    board: str | None
    sensors: list = field(default_factory=list)   # dicts: type, bus, address, answering (None: not checked)
    error: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "app": self.app, "board": self.board, "sensors": self.sensors, "error": self.error}


def self_test(session: Session) -> SelfTest:
    r = json.loads(session.exec(_SELF_TEST).strip().splitlines()[-1])
    sensors = [{"type": t, "bus": bus, "address": addr, "answering": ans} for t, bus, addr, ans in r["sensors"]]
    ok = r["error"] is None and all(s["answering"] is not False for s in sensors)
    return SelfTest(ok, r["app"], r["board"], sensors, r["error"])
