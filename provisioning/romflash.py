"""One esptool session per board: the base image (when asked), then the board's whole filesystem as one
littlefs image (provisioning/fsimage.py) at the `vfs` partition's offset, compressed, at the board's top
baud, each checked by the ROM's (or stub's) MD5; then the board is reset out of download mode.

    result = write_pass(port, board, template_for=t, device_files={...}, firmware=data, rom_only=True, reset=cb)

The board must be in download mode (BOOT held while RESET is pressed; `fleet sim bootloader NAME` on a virtual
board). A board that answers as MicroPython instead gets WrongMode, saying which button to hold.

`rom_only`: a port without DTR/RTS wired to EN and GPIO0 (a virtual board's pty) is not reset into download
mode by esptool (its `--before no-reset`). On a real USB-UART esptool toggles the modem lines first
(`--before default-reset`: boards with the usual auto-reset transistors enter download mode by themselves).

Each write covers whole 64 KiB erase blocks where that is quicker for the flash and changes nothing it
holds (erase_friendly, blank_before). The line goes to the board's top baud first, through the ROM's CHANGE_BAUDRATE, so the stub's upload runs at
that speed as well (esptool's own command changes the speed after the stub, which it uploads at 115200).

`stub` (the default): esptool uploads its flasher stub, as on a chip (a virtual board runs esptool's stub
for its chip: docs/virtual-board.md): 16 KiB blocks written while the next arrives, faster MD5, and a
base image already in flash is not written again (as esptool's skip-flashed, its MD5 is asked, once its
last 64 bytes match: already_flashed). `stub=False`
is esptool's `--no-stub`: the ROM alone, 1 KiB blocks, the region erased up front.

Nothing here prints; esptool's own messages are silenced (flash.py's logger) and its progress goes to the
caller's callback.
"""

import time
from collections.abc import Callable

from fleet import partitions
from fleet.boards import CHIPS, Board
from fleet.errors import FilesystemTooBig, FlashToolError, WrongBoard, WrongMode
from fleet.partitions import TABLE_OFFSET, TYPE_APP, Partition, md5_entry_at, vfs_partition
from fleet.release.flashspace import RESERVE

from . import fsimage

ROM_BAUD = 115200
DEFAULT_USB_BAUD = 460800  # a board file without "usb_baud": what every USB-UART on ESP32 boards takes


def parse_table(data: bytes) -> list[Partition]:
    """The partitions of the board's table (fleet.partitions); FlashToolError when it is damaged or absent."""
    try:
        return partitions.parse_table(data)
    except partitions.TableError as e:
        if e.empty:
            raise FlashToolError("the board has no valid partition table at 0x8000: it has no MicroPython",
                                 hint="give the base image with --firmware") from None
        raise FlashToolError(f"the board's partition table at 0x8000 is damaged ({e})",
                             hint="flash the base image again (--firmware)") from None


def esptool_chip(board: Board) -> str:
    """esptool's CHIP_NAME for the board (a virtual board: the chip it imitates)."""
    chip = CHIPS[board.definition["imitates"]] if board.virtual else board.chip
    return chip.esptool


def base_offset(board: Board) -> int:
    """Where the MicroPython base image goes: the board file's offset, a virtual board's imitated chip's."""
    return CHIPS[board.definition["imitates"]].base_offset if board.virtual else board.flash_offset


def top_baud(board: Board) -> int:
    return int(board.definition.get("usb_baud", DEFAULT_USB_BAUD))


# the ROM's SYNC command (op 0x08, 36 bytes: 07 07 12 20, then 32 x 0x55) in a SLIP frame
SYNC_FRAME = b"\xc0\x00\x08\x24\x00\x00\x00\x00\x00\x07\x07\x12\x20" + b"\x55" * 32 + b"\xc0"


def probe(port: str) -> str | None:
    """"rom" when a ROM loader answers a SYNC on the port, "repl" when MicroPython answers a Ctrl-C with
    its prompt (the board runs its app), None when nothing answers. Quick: esptool's own connect takes
    seconds to give up on a board that is not in download mode."""
    return probe_seen(port)[0]


def probe_seen(port: str) -> tuple[str | None, bytes]:
    """probe()'s answer and the bytes the port sent meanwhile (what answered when it was neither)."""
    import serial

    got = b""
    try:
        with serial.Serial(port, ROM_BAUD, timeout=0.1) as s:
            s.reset_input_buffer()
            s.write(SYNC_FRAME)
            deadline = time.monotonic() + 0.4
            while time.monotonic() < deadline:
                got += s.read(max(1, s.in_waiting))  # back as soon as bytes come, not at the read's timeout
                if b"\xc0\x01\x08" in got:
                    return "rom", got
            s.write(b"\r\x03\x03")
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                got += s.read(max(1, s.in_waiting))
                if b">>>" in got or b"raw REPL" in got:
                    return "repl", got
            return None, got
    except (OSError, serial.SerialException):
        return None, got


def no_rom_loader(port: str, seen: bytes, why) -> FlashToolError:
    """What answered on `port` instead of a ROM loader in download mode, and what to do."""
    from .session import ROM_NO_FIRMWARE_SIGNS, _sample

    download = ("put the board in download mode: hold BOOT, press and release RESET, release BOOT ('fleet sim "
                "bootloader NAME' on a virtual board)")
    if not seen:
        return FlashToolError(f"no ROM loader answers on {port}: nothing came back ({why})",
                              hint=f"{download}; check the cable and that this is the board's port")
    if any(m in seen for m in ROM_NO_FIRMWARE_SIGNS):
        return FlashToolError(f"no ROM loader answers on {port}: an ESP32 not in download mode answered (its ROM "
                              f"printed {_sample(seen, ROM_NO_FIRMWARE_SIGNS)}: no firmware to run)", hint=download)
    return FlashToolError(f"no ROM loader answers on {port}: another device or firmware answered ({len(seen)} bytes, "
                          f"e.g. {_sample(seen)}), not an ESP32's ROM loader",
                          hint=f"if this is the board, {download}; otherwise pick the board's port")


def in_download_mode(port: str) -> bool:
    return probe(port) == "rom"


def not_in_download_mode(port: str, name: str | None) -> WrongMode:
    sim = f"'fleet sim bootloader {name}'" if name else "'fleet sim bootloader NAME'"
    return WrongMode(f"the board on {port} is running its app (MicroPython answered), not its ROM loader: hold "
                     f"BOOT, press and release RESET, release BOOT, then run the same command again "
                     f"(a virtual board: {sim}); nothing was written")


def _read_table(esp, firmware: bytes | None, board: Board) -> bytes:
    if firmware is not None:
        at = TABLE_OFFSET - base_offset(board)
        if len(firmware) >= at + 0x100:
            return firmware[at:at + 0xC00]
    out = b""
    while len(out) < partitions.MAX_TABLE:  # 64 bytes a command in the ROM: read only as far as the MD5 entry
        out += esp.read_flash(TABLE_OFFSET + len(out), 64)
        if md5_entry_at(out) is not None or out[-32:] == b"\xff" * 32:
            break
    return out


Progress = Callable[[str, int, int], None]  # (stage, done, total): "image" or "filesystem"

# Erasing, as the flasher stub does it: a 64 KiB block where the region is aligned and still that long,
# else 4 KiB sectors. Typical times of a Winbond W25Q32JV (the 4 MB flash of ESP32 modules; datasheet AC
# characteristics): block erase 150 ms, sector erase 45 ms, page (256 B) program 0.4 ms.
SECTOR, ERASE_BLOCK, PAGE = 0x1000, 0x10000, 0x100
SECTOR_ERASE_S, BLOCK_ERASE_S, PAGE_PROGRAM_S = 0.045, 0.150, 0.0004


def erase_friendly(image: bytes, offset: int, limit: int) -> bytes:
    """An image (the filesystem: erased bytes are blocks littlefs counts as free; a base image: the unused end
    of its app partition) padded with erased bytes (0xFF) to the end of its last 64 KiB erase block when one block erase and programming the padding take the flash less time
    than erasing the tail sector by sector (from 5 of its 16 sectors on); not past `limit` (the partition's
    end). The stub erases what it is told to write, so the tail decides its erase commands."""
    end = offset + len(image)
    tail = end % ERASE_BLOCK
    if not tail or end - tail + ERASE_BLOCK > limit:
        return image
    sectors = -(-tail // SECTOR)
    padding = ERASE_BLOCK - sectors * SECTOR
    by_block = BLOCK_ERASE_S + (padding // PAGE) * PAGE_PROGRAM_S
    if sectors * SECTOR_ERASE_S <= by_block:
        return image
    return image + b"\xff" * (ERASE_BLOCK - tail)


def blank_before(esp, offset: int) -> int:
    """How many bytes before `offset` (back to its 64 KiB erase block's start) to write as erased bytes, so
    that the stub erases that block at once instead of sector by sector: all of them when the flash holds
    nothing there (its MD5 is that of erased bytes: nothing changes, e.g. the 4 KiB before an ESP32's
    bootloader at 0x1000) and the block erase is quicker, else none."""
    import hashlib

    head = offset % ERASE_BLOCK
    if not head:
        return 0
    sectors = (ERASE_BLOCK - head) // SECTOR
    if sectors * SECTOR_ERASE_S <= BLOCK_ERASE_S + (head // PAGE) * PAGE_PROGRAM_S:
        return 0
    start = offset - head
    return head if esp.flash_md5sum(start, head) == hashlib.md5(b"\xff" * head).hexdigest() else 0


def already_flashed(esp, offset: int, data: bytes) -> bool:
    """True when the flash holds `data` at `offset` (the stub's MD5, as esptool's skip-flashed asks it);
    its last 64 bytes are read first, so a board that holds another image (or none) costs one short read,
    not an MD5 of the whole region."""
    import hashlib

    tail = max(offset, offset + len(data) - 64)
    if esp.read_flash(tail, offset + len(data) - tail) != data[tail - offset:]:
        return False
    return esp.flash_md5sum(offset, len(data)) == hashlib.md5(data).hexdigest()



def _check_room_for_slots(board, vfs) -> None:
    """The table being flashed must leave the `vfs` the board's app budget was figured for (docs/boards.md):
    its app slots plus the reserve. A 4 MiB board flashed with MicroPython's OTA build (4MiB-ota) has 240
    blocks where its budget needs 512: a second slot would run out of flash at the first update."""
    budget = board.definition.get("app_budget")
    if budget is None or board.definition.get("app_store") == "romfs":
        return  # its slots are ROMFS images in the romfs partition, not in the vfs (bysans/ota/romfs.py)
    need = budget * board.definition.get("app_slots", 2) + RESERVE
    if vfs.size < need:
        layout = board.definition["flash"].get("partitions")
        raise FilesystemTooBig(
            f"the partition table leaves a vfs of {vfs.size} bytes ({vfs.size // 4096} blocks of 4096) at "
            f"0x{vfs.offset:x}; board {board.name}'s app budget needs {need} ({need // 4096} blocks: "
            f"{board.definition.get('app_slots', 2)} app slots of {budget // 4096} blocks and the reserve), "
            f"so an update would run out of flash; nothing was written",
            hint=(f"flash the MicroPython build with the board's table ({layout}: board file flash.partitions)"
                  if layout else "flash a MicroPython build whose table leaves a bigger vfs") +
                 ", or give the board a smaller app_budget (docs/boards.md, 'App budget')")

def write_pass(port: str, board: Board, *, template_for: Callable[[int], "fsimage.Template"],
               device_files: dict[str, bytes] | Callable[[str], dict] | None = None, firmware: bytes | None = None, rom_only: bool = False,
               reset: Callable[[], None] | None = None, progress: Progress | None = None,
               baud: int | None = None, name: str | None = None, stub: bool = True) -> dict:
    """Writes (base image and) filesystem in one esptool session, verified by MD5, then resets the board.
    `template_for(vfs_size)` gives the shared part of the filesystem for the board's vfs partition (the
    caller caches it per release and board); `device_files` are this device's own files, in memory only (or
    a callable given the chip's MAC, 12 hex digits, that returns them).
    Returns what was written: chip, mac, baud, vfs offset and size, bytes of each image, seconds."""
    from esptool.cmds import attach_flash, detect_chip, reset_chip, run_stub, write_flash
    from esptool.util import FatalError

    from .flash import _progress_of_thread, esptool_session

    t0 = time.monotonic()
    with esptool_session(port) as session:
        mode = probe(port) if rom_only else None  # a real port: esptool's reset puts it in download mode
        if mode == "repl":  # said at once: esptool's connect takes seconds to give up on a running app
            raise not_in_download_mode(port, name)
        try:
            esp = session.track(detect_chip(port, connect_mode="no-reset" if rom_only else "default-reset",
                                            connect_attempts=2 if rom_only else 4))
        except FatalError as e:
            mode, seen = probe_seen(port)
            if mode == "repl":
                raise not_in_download_mode(port, name) from None
            raise no_rom_loader(port, seen, str(e).splitlines()[0]) from None
        want = esptool_chip(board)
        if esp.CHIP_NAME != want:
            raise WrongBoard(f"the chip on {port} is an {esp.CHIP_NAME}, not {board.name}'s {want}; "
                             f"nothing was written")
        mac = bytes(esp.read_mac()).hex()
        speed = baud or top_baud(board)
        if speed != ROM_BAUD:
            # the ROM's own CHANGE_BAUDRATE (esptool's ESP32ROM.change_baud, second word 0, its crystal
            # correction), before the stub: its ~9 KB then go up at full speed too, and the stub keeps
            # the line's speed when it starts (docs/virtual-board.md, "Download mode")
            esp.change_baud(speed)
        if stub:
            esp = session.track(run_stub(esp))
        attach_flash(esp)
        table = _read_table(esp, firmware, board)
        if firmware is None:
            parts = parse_table(table)
            apps = [p for p in parts if p.type == TYPE_APP]
            if not apps or esp.read_flash(apps[0].offset, 64)[:1] != b"\xe9":
                raise FlashToolError(f"the board on {port} has no MicroPython base image; nothing was written",
                                     hint="give the base image with --firmware (it is checked against the "
                                          "board's chip first)")
        else:
            parts = parse_table(table)
        vfs = vfs_partition(parts, board.flash_size)
        _check_room_for_slots(board, vfs)
        if callable(device_files):  # e.g. enrollment: the device's keys from the chip's MAC
            device_files = device_files(mac)
        image = template_for(vfs.size).image(device_files)  # FilesystemTooBig before any byte is written
        image = erase_friendly(image, vfs.offset, vfs.offset + vfs.size)
        writes, skipped = [(vfs.offset, image)], False
        if firmware is not None:
            base = base_offset(board)
            # with the stub, a base image the flash already holds is not written again (esptool's
            # skip-flashed; not for the filesystem, whose device files make it new on every board)
            skipped = esp.IS_STUB and already_flashed(esp, base, firmware)
            if not skipped:
                head = blank_before(esp, base) if len(firmware) >= ERASE_BLOCK else 0
                data = b"\xff" * head + firmware
                home = next((p for p in parts if p.type == TYPE_APP and p.offset < base + len(firmware) <= p.end),
                            None)
                if home is not None:  # the rest of its last erase block: the unused end of its app partition
                    data = erase_friendly(data, base - head, home.end)
                writes = [(base - head, data), (vfs.offset, image)]
        stage = ["image" if firmware is not None else "filesystem"]

        def bar(done, total):
            if progress:
                progress(stage[0], done, total)

        _progress_of_thread.cb = bar
        for offset, data in writes:
            stage[0] = "filesystem" if offset == vfs.offset else "image"
            write_flash(esp, [(offset, data)], compress=True)  # raises FatalError unless the MD5 matches
        result = {"chip": esp.CHIP_NAME, "mac": mac, "baud": speed, "stub": esp.IS_STUB,
                  "vfs": {"offset": vfs.offset, "size": vfs.size}, "filesystem_bytes": len(image),
                  "image_bytes": len(firmware) if firmware is not None else None,
                  "base_image": None if firmware is None else "already in flash" if skipped else "written",
                  "seconds": round(time.monotonic() - t0, 3)}
        if reset is None:
            reset_chip(esp, "hard-reset")
        session.close()  # the port is free for the simulator's reset and the REPL check after it
        if reset is not None:
            reset()
        return result

