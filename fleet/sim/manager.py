"""Starting, finding and stopping virtual boards: the library behind `fleet sim`.

Each board lives in a directory of its own under the simulator's root (BYSANS_SIM_DIR, else
$XDG_STATE_HOME/bysans/sim/SCOPE, where SCOPE names the Python environment running `fleet`, so that two
checkouts, each with its own .venv, never see or stop each other's boards): its flash image, which outlives the board so that a board started again under
the same name keeps its files; the supervisor's log; and, while it runs, board.json, a `tty` link to its
serial port and the control socket. The daemon holds an exclusive lock on `.lock` while it runs, so one name
is one board.
"""

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .. import boards
from ..errors import Conflict, NotFound, SimError, SimUnavailable, UsageError
from ..resources import MP32_ENV, interpreter_arch, micropython32_path, micropython_path
from .control import ControlClient
from .flashmap import LAYOUTS, ROMFS_LABEL
from .vrom import runs_rom

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
_children = {}  # pid -> Popen of daemons this process started (so they are reaped, never zombies)


def sim_root() -> Path:
    env = os.environ.get("BYSANS_SIM_DIR")
    if env:
        return Path(env)
    state = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(state) / "bysans" / "sim" / sim_scope()


def sim_scope() -> str:
    """The default root's last part: the name of the folder holding this Python environment (a checkout's
    .venv gives the checkout's name) and a short hash of the environment's path."""
    prefix = os.path.realpath(sys.prefix)
    label = re.sub(r"[^A-Za-z0-9_.-]", "_", Path(prefix).parent.name or "root")[:24]
    return f"{label}-{hashlib.sha256(prefix.encode()).hexdigest()[:8]}"


def _forget_running(directory: Path):
    """Removes what only a running board has in its directory (its description and port link)."""
    for f in ("board.json", "tty"):
        (directory / f).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:
        return child.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _locked(path: Path) -> bool:
    """True while a daemon holds the board directory's lock."""
    try:
        fd = os.open(path / ".lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


class VirtualBoard:
    """A handle on one running virtual board."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.name = self.dir.name
        self.ctl = ControlClient(str(self.dir / "ctl.sock"), name=self.name)

    @property
    def info(self) -> dict:
        try:
            return json.loads((self.dir / "board.json").read_text())
        except FileNotFoundError:
            raise NotFound(f"virtual board {self.name} is not running",
                           hint="'fleet sim list' shows the running boards")

    @property
    def port(self) -> str:
        return self.info["port"]

    @property
    def pid(self) -> int:
        return self.info["pid"]

    def is_running(self) -> bool:
        return _locked(self.dir) and (self.dir / "board.json").exists()

    def status(self) -> dict:
        return self.ctl.request("status")

    def events(self) -> list:
        return self.ctl.request("events")["events"]

    def counters(self, *, reset: bool = False) -> dict:
        return self.ctl.request("counters", reset=reset)

    def reset(self):
        self.ctl.request("reset")

    def bootloader(self):
        """Hold BOOT and tap RESET: the board's ROM waits for esptool (download mode) until reset()."""
        self.ctl.request("bootloader")

    def powercut(self, off_s: float = 0.0):
        self.ctl.request("powercut", off_s=off_s)

    def unplug(self):
        """Pull the USB cable: the port vanishes and the board loses power until replug()."""
        self.ctl.request("unplug")

    def replug(self) -> str:
        """Plug the cable back in; returns the new serial port."""
        return self.ctl.request("replug")["port"]

    def captured(self, *, clear: bool = False) -> list:
        """Uplink payloads the board handed to its radio seam ({"sim_ms", "fport", "hex"})."""
        return self.ctl.request("captured", clear=clear)["uplinks"]

    def set_world(self, **values):
        return self.ctl.request("set", values=values)["world"]

    def wait_booted(self, timeout: float = 20.0, *, or_no_app: bool = False) -> dict:
        """Waits until MicroPython has mounted the filesystem (or, with `or_no_app`, until the board shows
        it has no bootable image: it then boot-loops, as an ESP32 does, until flashed)."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st["booted"] or (or_no_app and st["state"] == "no_app"):
                return st
            if time.monotonic() > deadline:
                raise SimError(f"virtual board {self.name} did not boot within {timeout:.0f} s",
                               hint=f"see {self.dir / 'supervisor.log'}")
            time.sleep(0.02)

    def wait_prompt(self, timeout: float = 30.0) -> dict:
        """Waits until the board's boot.py and main.py are done and it shows its REPL prompt (an app that
        returns, or a board without one). A Ctrl-C that lands while the interpreter is still starting can
        wedge a virtual board (docs/virtual-board.md), so tools that interrupt the app wait for this first."""
        deadline = time.monotonic() + timeout
        while True:
            st = self.status()
            if st.get("at_prompt"):
                return st
            if time.monotonic() > deadline:
                raise SimError(f"virtual board {self.name} did not reach its REPL prompt within {timeout:.0f} s",
                               hint="its app may be running or asleep: 'fleet sim status' shows its state")
            time.sleep(0.02)

    def stop(self, timeout: float = 10.0):
        """Stops the board; stopping a board that is not running does nothing."""
        try:
            pid = self.pid
        except NotFound:
            return
        try:
            self.ctl.request("stop")
        except SimError:
            pass
        deadline = time.monotonic() + timeout
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)  # its interpreter dies with it (PR_SET_PDEATHSIG)
            time.sleep(0.05)
            _alive(pid)
        _forget_running(self.dir)
        _children.pop(pid, None)


def running() -> list[VirtualBoard]:
    root = sim_root()
    if not root.is_dir():
        return []
    found = []
    for d in sorted(root.iterdir(), key=lambda p: (len(p.name), p.name)):
        if (d / "board.json").exists():
            if _locked(d):
                found.append(VirtualBoard(d))
            else:  # a daemon that died without cleaning up
                _forget_running(d)
    return found


def get(name: str) -> VirtualBoard:
    board = VirtualBoard(sim_root() / name)
    if not board.is_running():
        raise NotFound(f"no virtual board named '{name}' is running",
                       hint="'fleet sim list' shows the running boards")
    return board


def _free_names(count: int) -> list[str]:
    root = sim_root()
    taken = {b.name for b in running()}
    out, i = [], 1
    while len(out) < count:
        n = f"vb{i}"
        if n not in taken and not _locked(root / n):
            out.append(n)
        i += 1
    return out


def start(*, count: int = 1, names: list[str] | None = None, board: str = "virtual", baud: int | None = None,
          speed: int = 1, heap: str | None = None, erase: bool = False, timeout: float = 30.0,
          forwarder: str | None = None, scenario: str | None = None,
          interpreter: str | None = None) -> list[VirtualBoard]:
    """Starts virtual boards and returns once each one's interpreter has booted. `interpreter`: the
    MicroPython binary (default: the 32-bit one for a board whose code is x86, else the unix port in .venv);
    it must run the board's `mpy_arch`, so that releases built for the board load on it."""
    definition = boards.load(board)
    if definition["chip"] != "virtual":
        raise UsageError(f"board '{board}' is real hardware ({definition['chip']}); a virtual board needs a "
                         f"board file with chip 'virtual'", hint="use --board virtual")
    layout = definition["flash"].get("partitions")
    if layout is not None and layout not in LAYOUTS:
        raise UsageError(f"board '{board}': flash.partitions '{layout}' is not one of MicroPython's tables "
                         f"a virtual board knows", hint=f"use one of {', '.join(LAYOUTS)}")
    if speed < 1:
        raise UsageError("--speed must be a whole number of at least 1")
    if baud is not None and baud < 300:
        raise UsageError("--baud must be at least 300")
    if forwarder is not None and not re.match(r"^[\w.\-\[\]:]*:\d{1,5}$", forwarder):
        raise UsageError(f"--forwarder '{forwarder}' is not HOST:PORT", hint="e.g. --forwarder 127.0.0.1:1700")
    if scenario is not None:
        scenario = str(Path(scenario).resolve())
        if not Path(scenario).is_file():
            raise UsageError(f"scenario file {scenario} does not exist")
        from .clock import SimClock
        from .scenario import load as load_scenario

        load_scenario(scenario, SimClock())  # a bad file is reported here, before any board starts
    interpreter = interpreter_for(definition, interpreter)  # fails early, with a hint
    if names:
        for n in names:
            if not NAME_RE.match(n):
                raise UsageError(f"'{n}' is not a usable board name",
                                 hint="use letters, digits, '-', '_' or '.', at most 32 characters")
            if _locked(sim_root() / n):
                raise Conflict(f"a virtual board named '{n}' is already running",
                               hint=f"stop it with 'fleet sim stop {n}', or choose another --name")
    else:
        names = _free_names(count)
    started = []
    try:
        for n in names:
            started.append(_spawn(n, definition, baud=baud, speed=speed, heap=heap, erase=erase,
                                  forwarder=forwarder, scenario=scenario, interpreter=interpreter))
        for b in started:
            _wait_ready(b, timeout)
    except BaseException:
        for b in started:
            _kill_quietly(b)
        raise
    return started


def interpreter_for(definition: dict, interpreter: str | None = None) -> str:
    """The MicroPython binary a virtual board runs on, checked to run the board's code (its mpy_arch)."""
    arch = definition["mpy_arch"]
    if interpreter is None and arch == "x86":
        interpreter = micropython32_path()
        if interpreter is None:
            raise SimUnavailable(
                f"board '{definition['name']}' runs on a 32-bit MicroPython, and this machine has none",
                hint=f"build it with scripts/build-micropython32-rom and set {MP32_ENV} to the path it "
                     f"prints, or give --interpreter PATH")
    interpreter = interpreter or micropython_path()
    runs = interpreter_arch(interpreter)
    if runs != arch:
        others = [b for b in boards.names() if b.startswith("virtual")
                  and boards.load(b)["mpy_arch"] == runs] if runs else []
        raise UsageError(f"the interpreter {interpreter} runs {runs or 'no native'} code, and board "
                         f"'{definition['name']}' is built for {arch}",
                         hint=(f"use --board {others[0]} with it" if others else
                               "give an interpreter for the board's mpy_arch"))
    layout = definition["flash"].get("partitions")
    if layout and any(row[0] == ROMFS_LABEL for row in LAYOUTS[layout]) and not runs_rom(interpreter):
        raise UsageError(f"board '{definition['name']}' has a romfs partition, and the interpreter {interpreter} "
                         f"cannot map it (no vfs.rom_ioctl, or built before _vrom.names)",
                         hint="build the virtual board's interpreter with scripts/build-micropython32-rom and "
                              f"set {MP32_ENV} to the path it prints, or give --interpreter PATH")
    return interpreter


def _spawn(name, definition, *, baud, speed, heap, erase, forwarder=None, scenario=None,
           interpreter=None) -> VirtualBoard:
    d = sim_root() / name
    d.mkdir(parents=True, exist_ok=True)
    if erase:
        try:
            (d / "flash.img").unlink()
        except FileNotFoundError:
            pass
    (d / "board.json").unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "fleet.sim.daemon", "--dir", str(d), "--name", name,
           "--board-json", json.dumps(definition), "--speed", str(speed)]
    if baud:
        cmd += ["--baud", str(baud)]
    if heap:
        cmd += ["--heap", heap]
    if forwarder:
        cmd += ["--forwarder", forwarder]
    if scenario:
        cmd += ["--scenario", scenario]
    if interpreter:
        cmd += ["--interpreter", interpreter]
    out = open(d / "daemon.log", "ab")
    proc = subprocess.Popen(cmd, cwd=d, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)
    out.close()
    _children[proc.pid] = proc
    board = VirtualBoard(d)
    board._proc = proc
    return board


def _wait_ready(board: VirtualBoard, timeout: float):
    deadline = time.monotonic() + timeout
    proc = board._proc
    while not (board.dir / "board.json").exists():
        if proc.poll() is not None:
            tail = (board.dir / "daemon.log").read_text(errors="replace")[-800:]
            if proc.returncode == 75:
                raise Conflict(f"a virtual board named '{board.name}' is already running",
                               hint=f"stop it with 'fleet sim stop {board.name}', or choose another --name")
            raise SimError(f"virtual board {board.name} failed to start:\n{tail}",
                           hint=f"the whole log is in {board.dir}")
        if time.monotonic() > deadline:
            raise SimError(f"virtual board {board.name} did not start within {timeout:.0f} s",
                           hint=f"see {board.dir / 'daemon.log'}")
        time.sleep(0.02)
    board.wait_booted(max(1.0, deadline - time.monotonic()), or_no_app=True)


def _kill_quietly(board: VirtualBoard):
    proc = getattr(board, "_proc", None)
    if proc is not None and proc.poll() is None:
        proc.kill()
        proc.wait()
    _forget_running(board.dir)


def stop_all() -> list[str]:
    stopped = []
    for b in running():
        b.stop()
        stopped.append(b.name)
    return stopped


def erase(name: str):
    d = sim_root() / name
    if _locked(d):
        raise Conflict(f"virtual board '{name}' is running", hint=f"stop it first: 'fleet sim stop {name}'")
    shutil.rmtree(d, ignore_errors=True)
