"""Serial devices that are not MicroPython boards, each behind a pty of its own: what a technician's --port
may reach instead of a board. No board is needed.

    with FakePort("rom") as port: ...   # port is the pty's path

kinds: "silent" (nothing ever answers), "rom" (an ESP32 in download mode: prints its ROM banner when first
spoken to, as after the reset that opening the port causes, and answers the ROM loader's SYNC), "rom-quiet"
(download mode whose banner went by before the port was opened: only SYNC is answered), "other" (another
firmware: a GPS printing NMEA lines, whatever it is sent), "erased" (an ESP32 whose flash holds no
firmware: its ROM prints `invalid header` over and over), "repl-stuck" (a MicroPython board whose program
ignores Ctrl-C: its banner when first spoken to, then nothing).
"""

import os
import select
import threading
import tty

# REFERENCE-2.md section 1, "ROM boot banners" (ESP32, download mode)
ROM_BANNER = (b"ets Jul 29 2019 12:21:46\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 "
              b"(DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n")
# A ROM SYNC response: direction 1, opcode 8, 4 data bytes... value non-zero (ROM), status 0 0
SYNC_REPLY = b"\xc0\x01\x08\x04\x00\x07\x07\x12\x20\x00\x00\x00\x00\xc0"
NMEA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"


class FakePort:
    def __init__(self, kind: str):
        self.kind = kind
        self.received = bytearray()
        self._stop = threading.Event()

    def __enter__(self) -> str:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return os.ttyname(self._slave)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)
        os.close(self._master)
        os.close(self._slave)

    def _run(self):
        m, spoken_to = self._master, False
        while not self._stop.is_set():
            if self.kind == "other":
                os.write(m, NMEA)
            elif self.kind == "erased":
                os.write(m, b"invalid header: 0xffffffff\r\n")
            ready, _, _ = select.select([m], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(m, 1024)
            except OSError:
                return
            self.received += data
            if self.kind == "rom" and not spoken_to:
                os.write(m, ROM_BANNER)
            if self.kind == "repl-stuck" and not spoken_to:  # reset by the port's opening, then its main.py
                os.write(m, b"MicroPython v1.28.0 on 2026-01-01; ESP32 module with ESP32\r\n")
            spoken_to = True
            if self.kind in ("rom", "rom-quiet") and b"\xc0\x00\x08" in data:
                os.write(m, SYNC_REPLY * 8)  # esptool reads 8 answers to one SYNC
