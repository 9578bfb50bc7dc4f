"""One virtual board: the MicroPython unix port behind a pseudo-terminal, run as a board runs.

The supervisor holds two pseudo-terminals. The *external* one is the board's serial port: its path is what
pyserial, mpremote and pytest-embedded open, and it stays open across resets as a USB-UART does. The
*internal* one is the interpreter's terminal. Bytes cross between them through a paced link (optional baud
limit, counters). The supervisor restarts the interpreter when it ends (a soft reset, as Ctrl-D, sys.exit or
machine.soft_reset do on a board), after deep sleep, on a watchdog timeout, a hard reset or a power cut,
keeping the filesystem image always and RTC memory except on hard reset and power loss.
"""

import asyncio
import contextlib
import ctypes
import fcntl
import hashlib
import json
import logging
import os
import pty
import signal
import termios
import time
import tty

from .. import resources
from . import chips, flashmap, vrom
from .clock import SimClock
from .devices import build_buses
from .hwbus import HardwareBus
from .link import Counters, Pacer
from .romloader import FlashFile, RomLoader
from .wlan import station
from .world import World

log = logging.getLogger("fleet.sim")

RAW_BANNER = b"raw REPL; CTRL-B to exit\r\n"
FRIENDLY_BANNER = b'Type "help()"'
UNIX_BANNER = b"MicroPython "  # the first line of the unix port's REPL banner, which a board does not print
SOFT_REBOOT = b"MPY: soft reboot\r\n"
# What an ESP32's ROM prints after each kind of reset, so logs and tools read alike.
ROM_LINES = {
    "power_on": b"\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    "hard": b"\r\nrst:0x1 (POWERON_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    "watchdog": b"\r\nrst:0x7 (TG0WDT_SYS_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    "deepsleep": b"\r\nrst:0x5 (DEEPSLEEP_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
    "software": b"\r\nrst:0xc (SW_CPU_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n",
}
ROM_BAUD = 115200  # the ROM loader's UART speed after reset, before CHANGE_BAUDRATE
NO_APP_REPEAT_S = 0.5  # a board without a bootable image resets and complains again this often
STALE_OUTPUT_S = 1.0  # board output nobody has read for this long is dropped, as on an unread UART
MAX_EVENTS = 200
_PR_SET_PDEATHSIG = 1


def _child_setup():
    """In the interpreter's process: own session, the internal pty as controlling terminal (so Ctrl-C
    arrives as SIGINT while code runs), and death with the supervisor."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _set_raw(fd, *, isig=False):
    tty.setraw(fd)
    if isig:
        # ISIG: Ctrl-C becomes SIGINT, which MicroPython turns into KeyboardInterrupt. NOFLSH: without it
        # the line discipline throws away the input queued behind the Ctrl-C, which a board's UART never
        # does; mpremote sends Ctrl-C and then Ctrl-A at once, and losing the Ctrl-A left a board that had
        # just booted without a raw REPL now and then.
        attrs = termios.tcgetattr(fd)
        attrs[3] |= termios.ISIG | termios.NOFLSH
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


class Supervisor:
    def __init__(self, *, name: str, state_dir, board: dict, baud: int | None = None, speed: int = 1,
                 heap: str | None = None, forwarder: tuple | None = None, scenario: str | None = None,
                 interpreter: str | None = None):
        self.name = name
        self.interpreter = interpreter  # the MicroPython binary (default: resources.micropython_path())
        self.dir = state_dir
        self.board = board
        self.baud = baud
        self.clock = SimClock(speed)
        self.heap = heap or board.get("heap", "128K")
        # The chip whose ROM and bootloader this board imitates (a virtual board file's "imitates").
        self.chip = chips.get(board["chip"] if board["chip"] in chips.CHIPS else board.get("imitates", "esp32"))
        self.app = None  # the app partition that booted last
        self._romfs = None  # the table's `romfs` partition at the last boot
        self.rom = None  # the ROM loader while in download mode
        self._no_app = None  # the task that prints a boot loop's complaints
        self.world = World(self.clock)
        if scenario:
            self.world.load_scenario(scenario)
        self.wlan = station(self.clock, self.world.scenario)  # the WiFi around the board (wlan.py)
        self.forwarder = forwarder
        # Each virtual board has a MAC of its own, as each ESP32 has (locally administered, from its name).
        self.mac = "02" + hashlib.sha256(name.encode()).hexdigest()[:10]
        self.counters = Counters()
        options = {"clock": self.clock, "name": name, "forwarder": forwarder}
        self.bus = HardwareBus(clock=self.clock, buses=build_buses(self.board, self.world, options), actions=self)
        self.state = "off"
        self.raw_repl = False
        self.booted = False
        self.reset_cause = "power_on"
        self.generation = 0
        self.boots = {}
        self.events = []
        self.proc = None
        self._pending_input = []
        self._wire_epoch = 0  # bumped by a power cut: bytes on their way to the board then are lost
        self._boot_buf = b""
        self._at_repl = False  # a boot into the raw REPL: boot.py is done, the interpreter starts its REPL
        self._out_tail = b""
        self._wdt_deadline = None
        self._wdt_period = None
        self._wake_handle = None
        self._stopped = None
        self.ext_m = self.ext_s = None
        self.port = None

    # ----- set-up -------------------------------------------------------------------------------------

    def device(self, kind):
        for devices in self.bus.buses.values():
            for dev in devices.values():
                if dev.kind == kind:
                    return dev
        return None

    def image_path(self):
        return os.path.join(self.dir, "flash.img")

    def _ensure_image(self):
        """A board fresh from the technician: bootloader, partition table and a valid (stand-in) app image."""
        path = self.image_path()
        size = self.board["flash"]["size"]
        if not os.path.exists(path) or os.path.getsize(path) != size:
            layout = self.board["flash"].get("partitions", flashmap.DEFAULT_LAYOUT)
            with open(path, "wb") as f:
                f.write(flashmap.fresh_image(self.chip, size, layout))

    def _read_flash(self, offset, n):
        with open(self.image_path(), "rb") as f:
            f.seek(offset)
            return f.read(n)

    def _second_stage(self):
        """What the ROM and ESP-IDF's bootloader do at reset: the app partition that runs, or None."""
        boot = flashmap.select_boot(self.chip, self._read_flash)
        if boot.writes:
            with open(self.image_path(), "r+b") as f:
                for offset, data in boot.writes:
                    f.seek(offset)
                    f.write(data)
        return boot

    async def run(self, ready_cb=None):
        """Serves until stop(). `ready_cb(info)` is called once the port exists."""
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        self._ensure_image()
        self._ready_cb = ready_cb
        self.int_m, self.int_s = pty.openpty()
        os.set_blocking(self.int_m, False)
        self._plug_port()
        self.to_board = asyncio.Queue()
        self.to_host = asyncio.Queue()
        self._pacers = (Pacer(self.baud), Pacer(self.baud))
        self._board_writer = asyncio.ensure_future(self._write_board())
        tasks = [asyncio.ensure_future(self._write_host()), asyncio.ensure_future(self._watchdog())]
        hw = await asyncio.start_unix_server(self._serve_hw, path="hw.sock")
        ctl = await asyncio.start_unix_server(self._serve_control, path="ctl.sock")
        self._loop.add_reader(self.int_m, self._from_board)
        await self._boot("power_on")
        if ready_cb:
            ready_cb(self.info())
        try:
            await self._stopped.wait()
        finally:
            await self._kill()
            self._leave_download()
            for t in tasks + [self._board_writer]:
                t.cancel()
            hw.close()
            ctl.close()
            self._unplug_port()
            self._loop.remove_reader(self.int_m)
            for fd in (self.int_m, self.int_s):
                os.close(fd)
            for sock in ("hw.sock", "ctl.sock"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sock)

    def _plug_port(self):
        """The USB-UART appears: a new serial port (a new path, as after replugging a real board)."""
        self.ext_m, self.ext_s = pty.openpty()
        os.set_blocking(self.ext_m, False)
        os.set_blocking(self.ext_s, False)  # we only ever drain it, and must never wait on it
        _set_raw(self.ext_s)
        self.port = os.ttyname(self.ext_s)
        self._loop.add_reader(self.ext_m, self._from_host)

    def _unplug_port(self):
        if self.ext_m is None:
            return
        self._loop.remove_reader(self.ext_m)
        for fd in (self.ext_m, self.ext_s):
            os.close(fd)
        self.ext_m = self.ext_s = None
        self.port = None

    async def unplug(self):
        """The USB cable is pulled: the port vanishes and the USB-powered board loses power."""
        await self.power_cut(off_s=0, restore=False)
        self._unplug_port()
        self._event("unplug")

    async def replug(self):
        if self.ext_m is None:
            self._plug_port()
            self._event("replug", port=self.port)
            if self._ready_cb:
                self._ready_cb(self.info())
        if self.state == "off":
            await self._boot("power_on")

    def info(self):
        return {"id": self.name, "port": self.port, "pid": os.getpid(), "board": self.board["name"], "mac": self.mac,
                "baud": self.baud, "speed": self.clock.speed, "heap": self.heap,
                "interpreter": self.interpreter or resources.micropython_path(),
                "forwarder": f"{self.forwarder[0]}:{self.forwarder[1]}" if self.forwarder else None}

    # ----- the interpreter's life ---------------------------------------------------------------------

    def _event(self, event, **kw):
        self.events.append({"sim_ms": self.clock.now_ms(), "event": event, **kw})
        del self.events[:-MAX_EVENTS]
        log.info("%s %s %s", self.name, event, kw)

    def _leave_download(self):
        if self.rom is not None:
            self.rom.flash.close()
            self.rom = None
        for pacer in self._pacers:
            pacer.baud = self.baud
        if self._no_app is not None:
            self._no_app.cancel()
            self._no_app = None

    async def enter_download(self):
        """BOOT held while RESET is tapped: the chip's ROM waits for esptool (REFERENCE-2.md §1)."""
        if self.state == "off":
            raise ValueError("the board has no power (unplugged, or a power cut without restore)")
        self._cancel_wake()
        await self._kill()
        self._leave_download()
        self._clear_line()  # a chip's UART starts empty after its reset
        self.bus.clear_rtc()
        self.raw_repl = False
        self.state = "download"
        self.rom = RomLoader(self.chip, FlashFile(self.image_path(), self.board["flash"]["size"]),
                             mac=bytes.fromhex(self.mac), baud=ROM_BAUD)
        self._event("download_mode", chip=self.chip.name)
        self._to_host(b"\r\n" + self.chip.download_banner)

    async def _rom_input(self, data):
        rom = self.rom
        for action in rom.feed(data):
            if self.rom is not rom:
                return  # reset or power cut while the loader was busy: the rest is never sent
            if isinstance(action, bytes):
                self._to_host(action)
            elif action[0] == "delay":
                await asyncio.sleep(action[1])
            elif action[0] == "baud":
                self._to_host(action)  # the line switches once what was sent before has left
            elif action[0] == "run":
                await self._kill()
                await self._boot("software")
                return

    async def _boot_loop(self, boot, cause):
        """No bootable image: the chip prints its complaint and resets, over and over (RTC watchdog or the
        bootloader's own reset), as an ESP32 does."""
        rom_line = ROM_LINES[cause] if cause in ROM_LINES else b""
        again = (b"\r\n" + self.chip.boot_banner + b"rst:0x10 (RTCWDT_RTC_RESET),boot:0x13 (SPI_FAST_FLASH_BOOT)\r\n")
        text = "".join(line + "\r\n" for line in boot.lines).encode()
        if boot.lines[0].startswith("invalid header"):
            text *= 8
        self._to_host(rom_line + text)
        while True:
            await asyncio.sleep(NO_APP_REPEAT_S)
            self._to_host(again + text)

    async def _boot(self, cause, *, raw=False):
        self.generation += 1
        gen = self.generation
        self._leave_download()
        self.reset_cause = cause if cause != "software" else "soft"
        self.boots[cause] = self.boots.get(cause, 0) + 1
        self.booted = False
        self._wdt_deadline = None
        boot = None if cause == "soft" and self.app else self._second_stage()  # a soft reset restarts only MicroPython
        if boot is not None:
            self.app = boot.app.label if boot.app else None
        if boot is not None and boot.app is None:
            self.state = "no_app"
            self._event("no_app", cause=cause, why=boot.lines[-1])
            self._no_app = asyncio.ensure_future(self._boot_loop(boot, cause))
            return
        _set_raw(self.int_s, isig=True)  # a killed REPL may have left the terminal without ISIG
        if cause in ROM_LINES:
            self._to_host(ROM_LINES[cause])
        # Input waits until MicroPython itself handles Ctrl-C: while boot.py/main.py run, or at the REPL
        # prompt. Between those moments the unix port leaves SIGINT at its default, and a Ctrl-C would kill
        # the interpreter (a real board's UART is not read before its firmware runs either). In a boot into
        # the raw REPL it waits for the raw prompt: a Ctrl-C does not interrupt that boot's boot.py (a board's
        # would; mpremote sends nothing until the prompt).
        self.state = "booting_raw" if raw else "booting"
        self._boot_buf = b""
        self._at_repl = False
        self._out_tail = b""  # a new interpreter: the last boot's prompt is not this one's
        interpreter = self.interpreter or resources.micropython_path()
        env = dict(os.environ, BYSANS_HW="hw.sock", BYSANS_IMG=self.image_path(), BYSANS_RAW="1" if raw else "0",
                   **self._rom_env(interpreter, boot))
        cmd = [interpreter, "-X", f"heapsize={self.heap}", "-i", str(resources.rom_dir() / "vboot.py")]
        self.proc = await asyncio.create_subprocess_exec(
            *cmd, stdin=self.int_s, stdout=self.int_s, stderr=self.int_s, env=env, cwd=self.dir,
            preexec_fn=_child_setup)
        self._event("boot", cause=self.reset_cause, raw=raw, pid=self.proc.pid)
        asyncio.ensure_future(self._watch_exit(self.proc, gen))

    def _rom_env(self, interpreter, boot):
        """On the board's own interpreter (scripts/build-micropython32-rom): the stand-ins' ROM segment, the
        flash's `romfs` partition (the range vfs.rom_ioctl maps, as an ESP32 maps it; none: no /rom), and the
        names the chip's firmware holds (the stand-ins'; with a romfs partition, Bysans's own MicroPython
        build, also the firmware's names module: fleet/sim/vrom.py)."""
        env = {"BYSANS_VROM": "", "BYSANS_ROMFS": "", "BYSANS_QSTRS": ""}
        if not vrom.runs_rom(interpreter):
            return env
        env["BYSANS_VROM"] = vrom.ensure_standins(self.dir, self.board["mpy_arch"])
        if boot is not None:
            self._romfs = boot.romfs
        if self._romfs is not None:
            env["BYSANS_ROMFS"] = f"{os.path.abspath(self.image_path())}:{self._romfs.offset}:{self._romfs.size}"
        env["BYSANS_QSTRS"] = vrom.ensure_names(self.dir, self.board["mpy_arch"], firmware=self._romfs is not None)
        return env

    async def _watch_exit(self, proc, gen):
        rc = await proc.wait()
        if gen != self.generation or self._stopped.is_set():
            return  # the supervisor ended it on purpose (sleep, reset, power cut) and has handled it
        self._drain_board()
        self._event("exit", rc=rc)
        # On a board, the end of the program is a soft reset: sys.exit, Ctrl-D, machine.soft_reset().
        self._to_host(SOFT_REBOOT)
        await self._boot("soft", raw=self.raw_repl)

    async def _kill(self):
        self.generation += 1
        self.booted = False
        self._wdt_deadline = None
        self._pending_input.clear()
        self.wlan.power_off()
        proc, self.proc = self.proc, None
        if proc is not None and proc.returncode is None:
            proc.kill()
            await proc.wait()
        self._drain_board()
        termios.tcflush(self.int_s, termios.TCIFLUSH)  # what the board had not read yet is gone

    def _drain_board(self):
        with contextlib.suppress(BlockingIOError, OSError):
            while True:
                data = os.read(self.int_m, 65536)
                if not data:
                    break
                self._board_output(data)

    def _cancel_wake(self):
        if self._wake_handle is not None:
            self._wake_handle.cancel()
            self._wake_handle = None

    async def hard_reset(self):
        self._cancel_wake()
        await self._kill()
        self.bus.clear_rtc()
        self.raw_repl = False
        self._event("hard_reset")
        await self._boot("hard")

    async def power_cut(self, off_s: float = 0.0, restore: bool = True):
        """Cuts power now (the interpreter dies wherever it is); power returns after `off_s` seconds."""
        self._cancel_wake()
        await self._kill()
        self._leave_download()
        self.bus.clear_rtc()
        self.raw_repl = False
        self.state = "off"
        self._clear_line()
        self._event("power_cut", off_s=off_s)
        if not restore:
            return

        async def restore_power():
            self._wake_handle = None
            if self.state == "off":
                await self._boot("power_on")
        self._wake_handle = self._loop.call_later(off_s, lambda: asyncio.ensure_future(restore_power()))

    # called by the hardware bus on the board's requests
    def deep_sleep(self, ms: int):
        async def go():
            await self._kill()
            self.state = "sleeping"
            self.raw_repl = False
            self._event("deep_sleep", ms=ms)
            if ms > 0:
                self._wake_handle = self._loop.call_later(
                    self.clock.real_seconds(ms), lambda: asyncio.ensure_future(self._wake()))
        asyncio.ensure_future(go())

    async def _wake(self):
        self._wake_handle = None
        if self.state == "sleeping":
            await self._boot("deepsleep")

    def software_reset(self):
        async def go():
            await self._kill()
            self.raw_repl = False
            await self._boot("software")
        asyncio.ensure_future(go())

    def soft_reset(self):
        # SystemExit out of boot.py or main.py (machine.soft_reset(), sys.exit()): on a board pyexec ends and
        # MicroPython starts again, without the REPL in between; the unix port's -i would open it instead.
        # Out of boot.py in a boot into the raw REPL the board stays in raw mode (pyexec_mode_kind).
        raw = self.state == "booting_raw"

        async def go():
            await self._kill()
            self.raw_repl = False
            self._to_host(SOFT_REBOOT)
            await self._boot("soft", raw=raw)
        asyncio.ensure_future(go())

    def arm_watchdog(self, ms: int):
        # Below a second of real time a fast clock would trip it on any hiccup of the host.
        self._wdt_period = max(self.clock.real_seconds(ms), min(ms / 1000, 1.0))
        self._wdt_deadline = time.monotonic() + self._wdt_period

    def feed_watchdog(self):
        if self._wdt_deadline is not None:
            self._wdt_deadline = time.monotonic() + self._wdt_period

    async def _watchdog(self):
        while True:
            await asyncio.sleep(0.05)
            if self._wdt_deadline is not None and time.monotonic() > self._wdt_deadline:
                await self._kill()
                self.raw_repl = False
                self._event("watchdog_reset")
                await self._boot("watchdog")

    # ----- bytes on the wire --------------------------------------------------------------------------

    def _from_host(self):
        try:
            data = os.read(self.ext_m, 4096)
        except (BlockingIOError, OSError):
            return
        self.counters.host_to_board += len(data)
        if self.state in ("running", "download"):
            self.to_board.put_nowait((time.monotonic(), data))
        elif self.state in ("booting", "booting_raw"):
            self._pending_input.append(data)
        # asleep or unpowered: nobody listens

    def _from_board(self):
        try:
            data = os.read(self.int_m, 65536)
        except (BlockingIOError, OSError):
            return
        self._board_output(data)

    def _board_output(self, data):
        if self.state == "booting_raw" and self._at_repl:
            # Restarting into the raw REPL (after Ctrl-D there): boot.py has run and printed (passed on as
            # it came, as a board's does); wait for the friendly prompt, ask for the raw REPL, and show the
            # host only its banner, as a board does.
            self._boot_buf += data
            if b">>> " in self._boot_buf and b"\x01" not in self._boot_buf:
                # what boot.py printed that was still on its way when it ended: before the REPL's banner
                j = self._boot_buf.rfind(UNIX_BANNER, 0, self._boot_buf.index(b">>> "))
                if j > 0:
                    self._to_host(self._boot_buf[:j])
                    self._boot_buf = self._boot_buf[j:]
                self._boot_buf += b"\x01"
                os.write(self.int_m, b"\x01")
            i = self._boot_buf.find(RAW_BANNER)
            if i >= 0 and self._boot_buf.endswith(b">"):
                self._to_host(self._boot_buf[i:])
                self._boot_buf = b""
                self.raw_repl = True
                self._release_input()
            return
        tail = self._out_tail + data
        if self.state == "booting" and tail.endswith(b">>> "):
            self._release_input()  # at the REPL prompt the terminal is raw: Ctrl-C is just a byte
        r, f = tail.rfind(RAW_BANNER), tail.rfind(FRIENDLY_BANNER)
        if r >= 0 or f >= 0:
            self.raw_repl = r > f
        self._out_tail = tail[-64:]
        self._to_host(data)

    def _release_input(self):
        self.state = "running"
        now = time.monotonic()  # held input reaches the interpreter from now on
        for chunk in self._pending_input:
            self.to_board.put_nowait((now, chunk))
        self._pending_input.clear()

    def _clear_line(self):
        """A reset or a power cut: what the host had sent but the board had not yet taken (queued for the
        line, held while it booted) never reaches the new chip (a 16 KiB flasher-stub block takes 1.4 s at
        115200), and what the board had written but the line had not yet carried was never sent: a chip's
        UART sends as it produces, 128 bytes of FIFO ahead at most. Its USB-UART, powered with it, is empty."""
        self._wire_epoch += 1
        for q in (self.to_board, self.to_host):
            while not q.empty():
                q.get_nowait()
        for pacer in self._pacers:
            pacer.free()
        self._pending_input.clear()
        self._board_writer.cancel()  # it may be waiting out a long chunk's wire time
        self._board_writer = asyncio.ensure_future(self._write_board())

    def _to_host(self, data):
        self.to_host.put_nowait((time.monotonic(), data))

    async def _write_board(self):
        pacer = self._pacers[0]
        while True:
            ready, data = await self.to_board.get()
            epoch = self._wire_epoch
            # the interpreter reads its input as it trickles in (64 bytes at a time); the ROM loader acts
            # on whole SLIP frames, so it gets what arrived at once, when its last byte would have arrived
            step = 64 if self.baud and self.state != "download" else len(data)
            for i in range(0, len(data), step):
                chunk = data[i:i + step]
                await pacer.wait(len(chunk), ready)
                if epoch != self._wire_epoch:
                    break  # the power went while these bytes were on the wire
                if self.state == "download":
                    await self._rom_input(chunk)
                elif self.state == "running":
                    await self._write_all(self.int_m, chunk, None)

    async def _write_host(self):
        pacer = self._pacers[1]
        while True:
            ready, data = await self.to_host.get()
            if isinstance(data, tuple):  # ("baud", n): the ROM loader changed the line's speed
                if self.baud and self.state == "download":
                    for p in self._pacers:
                        p.baud = data[1]
                continue
            step = 64 if self.baud else len(data)
            for i in range(0, len(data), step):
                chunk = data[i:i + step]
                await pacer.wait(len(chunk), ready)
                if self.ext_m is None:  # unplugged: the bytes go nowhere
                    self.counters.dropped += len(chunk)
                    continue
                await self._write_all(self.ext_m, chunk, STALE_OUTPUT_S)
                self.counters.board_to_host += len(chunk)

    async def _write_all(self, fd, data, stale_after):
        """Writes all of `data` to `fd`. With `stale_after` (the host's side): when the port takes nothing
        for that long and nobody has it open, what waits unread is dropped, as bytes sent to no listener
        are lost (see _host_reads)."""
        view = memoryview(data)
        while view:
            try:
                n = os.write(fd, view)
                view = view[n:]
                continue
            except BlockingIOError:
                pass
            ready = self._loop.create_future()
            self._loop.add_writer(fd, lambda: ready.done() or ready.set_result(None))
            try:
                if stale_after is None:
                    await ready
                elif not await self._host_reads(ready, stale_after):
                    # Nobody is reading the port: drop what waits unread
                    with contextlib.suppress(BlockingIOError, OSError, TypeError):
                        while os.read(self.ext_s, 65536):
                            pass
                    self.counters.dropped += len(view)
                    return
            finally:
                self._loop.remove_writer(fd)

    async def _host_reads(self, ready, stale_after) -> bool:
        """Waits until `ready` (the port can take more); False once it has not for stale_after and no
        process has the port open. A host that holds the port open reads it, however slowly: a loaded
        machine reading byte by byte takes seconds to empty the kernel's buffers, and the bytes in them
        are the host's (a kernel keeps what it buffered for an open port; only bytes sent to a port
        nobody has open are lost)."""
        while True:
            done, _ = await asyncio.wait({ready}, timeout=stale_after)
            if done:
                return True
            if not self._port_held():
                return False

    def _port_held(self) -> bool:
        """Whether a process other than this one has the host's side of the port open (/proc/PID/fd)."""
        port, me = self.port, str(os.getpid())
        if not port:
            return False
        for pid in os.listdir("/proc"):
            if not pid.isdigit() or pid == me:
                continue
            try:
                fds = os.listdir(f"/proc/{pid}/fd")
            except OSError:
                continue
            for fd in fds:
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == port:
                        return True
                except OSError:
                    continue
        return False

    # ----- the board's hardware requests and the control socket ---------------------------------------

    async def _serve_hw(self, reader, writer):
        gen = self.generation
        try:
            while True:
                line = await reader.readline()
                if not line or gen != self.generation:
                    break
                line = line.decode().strip()
                if line == "booted":  # the filesystem is mounted
                    self.booted = True
                    answer = "ok"
                elif line == "running":  # boot.py or main.py starts: MicroPython handles Ctrl-C now
                    if self.state == "booting":
                        self._release_input()
                    answer = "ok"
                elif line == "repl":  # a boot into the raw REPL: boot.py is done (main.py does not run)
                    if self.state == "booting_raw":
                        self._drain_board()  # boot.py's output goes to the host as it is
                        self._at_repl = True
                    answer = "ok"
                elif line.startswith("wlan."):
                    answer = self.wlan.handle(line)
                elif line == "hello":
                    answer = json.dumps({"reset_cause": self.reset_cause, "speed": self.clock.speed, "app": self.app,
                                         "sim_ms": self.clock.now_ms(), "wlan_gate": self.wlan.gated,
                                         "board": {"mac": self.mac, **self.board}})
                else:
                    answer = self.bus.handle(line)
                if answer is not None:
                    writer.write(answer.encode() + b"\n")
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def status(self):
        return {**self.info(), "state": self.state, "booted": self.booted, "raw_repl": self.raw_repl,
                "at_prompt": self.state == "running" and self._out_tail.endswith((b">>> ", b"raw REPL; CTRL-B to exit\r\n>")),
                "reset_cause": self.reset_cause, "boots": dict(self.boots), "sim_ms": self.clock.now_ms(),
                "chip": self.chip.name, "app": self.app, "baud_now": self._pacers[0].baud,
                "counters": self.counters.as_dict(), "interpreter_pid": self.proc.pid if self.proc else None,
                "rtc_memory_bytes": len(self.bus.rtc_memory),
                "world": {k: self.world.get(k) for k in self.world.values},
                "scenario": self.world.scenario is not None,
                "scenario_start_ms": self.world.scenario.start_ms if self.world.scenario is not None else None,
                "uplinks_captured": len(self.bus.captured),
                "watchdog_armed": self._wdt_deadline is not None, "wlan": self.wlan.as_dict()}

    async def control(self, req: dict) -> dict:
        op = req.get("op")
        if op == "status":
            return self.status()
        if op == "events":
            return {"events": self.events}
        if op == "counters":
            c = self.counters.as_dict()
            if req.get("reset"):
                self.counters.reset()
            return c
        if op == "reset":
            await self.hard_reset()
            return {"done": True}
        if op == "bootloader":
            await self.enter_download()
            return {"done": True}
        if op == "powercut":
            await self.power_cut(float(req.get("off_s", 0)))
            return {"done": True}
        if op == "unplug":
            await self.unplug()
            return {"done": True}
        if op == "replug":
            await self.replug()
            return {"port": self.port}
        if op == "captured":
            out = list(self.bus.captured)
            if req.get("clear"):
                self.bus.captured.clear()
            return {"uplinks": out}
        if op == "set":
            self.world.set(**req.get("values", {}))
            return {"world": dict(self.world.values)}
        if op == "wlan":  # a drop-out of an access point (fleet/sim/wlan.py)
            return self.wlan.control(req)
        if op == "stop":
            self._stopped.set()
            return {"done": True}
        raise ValueError(f"unknown control request '{op}'")

    async def _serve_control(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    answer = {"ok": True, **(await self.control(json.loads(line)))}
                except (ValueError, KeyError, TypeError) as e:
                    answer = {"ok": False, "error": str(e).strip("'\"")}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
