"""The simulated air around a virtual board's radio: one Semtech packet forwarder (protocol v2, UDP) per
board, so a network server sees each virtual board behind a gateway of its own (docs/virtual-air.md).

Up:   a frame the radio model finished sending leaves as PUSH_DATA {"rxpk": [...]} (the gateway heard it),
      stamped with `tmst`, the gateway's microsecond counter at the frame's end. PULL_DATA keep-alives tell
      the server where to send downlinks.
Down: PULL_RESP {"txpk": {...}} is scheduled by `tmst` (or `imme`) on the simulated clock, answered with
      TX_ACK, and handed to the radio model that listens on its frequency, SF, bandwidth and IQ polarity
      when it goes on air (with a tolerance that grows with the clock's speed, see `tolerance_ms`).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import os
import socket
import time
from dataclasses import dataclass

from ...airtime import time_on_air_s
from ...lorawan.semtech_udp import (PULL_ACK, PULL_DATA, PULL_RESP, PUSH_ACK, PUSH_DATA, TMST_WRAP, TX_ACK,
                                    datagram, datr, parse, parse_datr)

log = logging.getLogger("fleet.sim.air")

KEEPALIVE_S = 5.0          # real seconds between PULL_DATA (the reference forwarder's default is 10 s)
TOO_EARLY_MS = 30_000      # a txpk further ahead than this (simulated) is refused


def gateway_eui(name: str) -> bytes:
    """A stable gateway EUI per virtual board: B8:27:EB (a locally chosen prefix) + hash of its name."""
    return bytes.fromhex("b827eb") + hashlib.sha256(name.encode()).digest()[:5]


def toa_ms(n: int, sf: int, bw_khz: int, crc: bool = True) -> float:
    return time_on_air_s(n, sf, bw_hz=bw_khz * 1000, crc=crc) * 1000


@dataclass
class Downlink:
    start_ms: int        # simulated time its preamble starts
    freq_hz: int
    sf: int
    bw_khz: int
    ipol: bool
    data: bytes
    power_dbm: int
    received_ms: int     # simulated time the PULL_RESP arrived

    @property
    def toa_ms(self) -> float:
        return toa_ms(len(self.data), self.sf, self.bw_khz, crc=False)


class PacketForwarder:
    """The gateway side of one virtual board's radio. `forwarder` is (host, port) or None (frames go
    nowhere but are still counted)."""

    def __init__(self, clock, forwarder, *, name: str = "vb", eui: bytes | None = None, rssi_dbm: int = -60,
                 snr_db: float = 9.0, freq_tolerance_hz: int = 1000):
        self.clock = clock
        self.forwarder = tuple(forwarder) if forwarder else None
        self.eui = eui or gateway_eui(name)
        self.rssi_dbm = rssi_dbm
        self.snr_db = snr_db
        self.freq_tolerance_hz = freq_tolerance_hz
        self._t0_ms = clock.now_ms()
        self.sock = None
        self._loop = None
        self._last_pull = 0.0
        self.pending: list[Downlink] = []
        self.stats = {"push_data": 0, "push_ack": 0, "pull_data": 0, "pull_ack": 0, "pull_resp": 0,
                      "tx_ack": 0, "delivered": 0, "missed": 0, "refused": 0}
        self.uplinks: list[dict] = []    # every rxpk sent, for inspection
        self.delivered: list[dict] = []  # every downlink a listening radio got

    # ---- time ---------------------------------------------------------------------------------------
    def tolerance_ms(self) -> int:
        """How far (simulated ms) a downlink's start may miss the receiver's window and still be heard:
        a real radio needs the preamble inside its window; a board on a fast clock gets slack for the
        host's latency (setting up RX takes dozens of hardware round trips), which the speed factor
        magnifies. Always under the 1 s between RX1 and RX2."""
        return min(900, 50 + 40 * self.clock.speed)

    def counter(self, sim_ms: float) -> int:
        """The gateway's free-running microsecond counter (`tmst`) at a simulated time."""
        return int((sim_ms - self._t0_ms) * 1000) % TMST_WRAP

    def counter_to_ms(self, tmst: int, now_ms: int) -> float:
        """The simulated time of a counter value: the nearest one to `now_ms`, across wrap-around."""
        delta = (tmst - self.counter(now_ms) + TMST_WRAP // 2) % TMST_WRAP - TMST_WRAP // 2
        return now_ms + delta / 1000

    # ---- UDP ----------------------------------------------------------------------------------------
    def _ensure(self):
        if self.forwarder is None:
            return False
        if self.sock is None:
            self.sock = socket.socket(socket.AF_INET6 if ":" in self.forwarder[0] else socket.AF_INET,
                                      socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            self.sock.connect(self.forwarder)
        if self._loop is None:
            try:
                self._loop = asyncio.get_running_loop()
            except RuntimeError:
                pass
            else:  # inside the supervisor: read downlinks as they come, keep the pull alive
                self._loop.add_reader(self.sock.fileno(), self.poll)
                self._loop.call_soon(self._keepalive)
        if self._loop is None and time.monotonic() - self._last_pull > KEEPALIVE_S:
            self._pull()
        return True

    def _keepalive(self):
        self._pull()
        self._loop.call_later(KEEPALIVE_S, self._keepalive)

    def _send(self, ident: int, token: bytes, body: bytes = b""):
        try:
            self.sock.send(datagram(ident, token, eui=self.eui, body=body))
        except OSError as e:  # nobody listens (ECONNREFUSED) or the network is down: the air loses it
            log.info("packet forwarder: send failed: %s", e)

    def _pull(self):
        self._last_pull = time.monotonic()
        self.stats["pull_data"] += 1
        self._send(PULL_DATA, os.urandom(2))

    def start(self):
        """Opens the socket and sends the first PULL_DATA (a radio model calls this on first use)."""
        self._ensure()

    def close(self):
        if self.sock is not None:
            if self._loop is not None:
                self._loop.remove_reader(self.sock.fileno())
            self.sock.close()
            self.sock = None

    def uplink(self, frame: bytes, *, freq_hz: int, sf: int, bw_khz: int, end_ms: float, crc: bool = True,
               cr: str = "4/5"):
        """The gateway heard a frame that ended at `end_ms`: PUSH_DATA with one rxpk. The frequency is the
        gateway's channel: the radio's synthesizer setting on the 100 Hz grid of LoRaWAN channels."""
        rxpk = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(end_ms / 1000)) + f".{int(end_ms) % 1000:03d}000Z",
            "tmst": self.counter(end_ms), "chan": 0, "rfch": 0, "freq": round(freq_hz, -2) / 1e6, "stat": 1 if crc else 0,
            "modu": "LORA", "datr": datr(sf, bw_khz), "codr": cr, "rssi": int(self.rssi_dbm),
            "lsnr": float(self.snr_db), "size": len(frame), "data": base64.b64encode(bytes(frame)).decode(),
        }
        self.uplinks.append(rxpk)
        del self.uplinks[:-1000]
        if not self._ensure():
            return rxpk
        self.stats["push_data"] += 1
        self._send(PUSH_DATA, os.urandom(2), json.dumps({"rxpk": [rxpk]}).encode())
        return rxpk

    def poll(self):
        """Reads whatever the server sent (never blocks)."""
        if self.sock is None:
            return
        while True:
            try:
                data = self.sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # ECONNREFUSED from an earlier send: nobody at the server address yet
                return
            self._datagram(data)

    def _datagram(self, data: bytes):
        d = parse(data)
        if d is None:
            return
        ident = d.ident
        if ident == PUSH_ACK:
            self.stats["push_ack"] += 1
        elif ident == PULL_ACK:
            self.stats["pull_ack"] += 1
        elif ident == PULL_RESP:
            self.stats["pull_resp"] += 1
            error = self._schedule(d.body)
            self.stats["tx_ack"] += 1
            self._send(TX_ACK, d.token, json.dumps({"txpk_ack": {"error": error}}).encode())

    def _schedule(self, body: bytes) -> str:
        now = self.clock.now_ms()
        try:
            txpk = json.loads(body)["txpk"]
            if txpk.get("modu", "LORA") != "LORA":
                return "TX_FREQ"  # FSK is not simulated
            sf, bw = parse_datr(txpk["datr"])
            data = base64.b64decode(txpk["data"])
            freq_hz = int(round(float(txpk["freq"]) * 1e6))
            if txpk.get("imme"):
                start = now
            elif "tmst" in txpk:
                start = self.counter_to_ms(int(txpk["tmst"]), now)
            else:
                return "GPS_UNLOCKED"  # time-based (tmms/time) needs GPS, which the virtual gateway lacks
        except (ValueError, KeyError, TypeError) as e:
            log.info("packet forwarder: bad txpk: %s", e)
            self.stats["refused"] += 1
            return "TX_FREQ"
        if "size" in txpk and int(txpk["size"]) != len(data):
            self.stats["refused"] += 1
            return "TX_FREQ"
        if start < now - self.tolerance_ms():
            self.stats["refused"] += 1
            return "TOO_LATE"
        if start > now + TOO_EARLY_MS:
            self.stats["refused"] += 1
            return "TOO_EARLY"
        log.debug("packet forwarder: txpk for %d (in %d ms)", start, start - now)
        self.pending.append(Downlink(start_ms=int(start), freq_hz=freq_hz, sf=sf, bw_khz=bw,
                                     ipol=bool(txpk.get("ipol", False)), data=data,
                                     power_dbm=int(txpk.get("powe", 14)), received_ms=now))
        return "NONE"

    # ---- what a listening radio hears -----------------------------------------------------------------
    def take(self, *, freq_hz: int, sf: int, bw_khz: int, iq_inverted: bool, rx_since_ms: float,
             now_ms: float, not_before_ms: float | None = None) -> list[Downlink]:
        """The downlinks a receiver on these settings, in RX from `rx_since_ms` until at least `now_ms`
        (the chip model asks before any change of its mode), has caught: those whose preamble began while it
        listened (within the tolerance before its start, but never before `not_before_ms`: the end of the
        chip's own transmission), oldest first; they leave the air. A frame is never
        caught before its preamble starts, and one whose preamble passed while nobody listened is dropped
        once it is over (`stats["missed"]`). Whether the chip then keeps a caught frame (it is busy with
        another, it leaves RX before the frame ends) is the chip model's business."""
        self.poll()
        tol = self.tolerance_ms()
        keep, found = [], []
        first = rx_since_ms - tol if not_before_ms is None else max(rx_since_ms - tol, not_before_ms)
        for dl in self.pending:
            if (abs(dl.freq_hz - freq_hz) <= self.freq_tolerance_hz and dl.sf == sf and dl.bw_khz == bw_khz
                    and dl.ipol == iq_inverted and first <= dl.start_ms <= now_ms):
                found.append(dl)
            elif dl.start_ms + dl.toa_ms + tol < now_ms:
                self.stats["missed"] += 1
                log.info("packet forwarder: downlink at %d on %d SF%d missed (nobody listening)",
                         dl.start_ms, dl.freq_hz, dl.sf)
            else:
                keep.append(dl)
        self.pending = keep
        found.sort(key=lambda d: d.start_ms)
        for dl in found:
            self.stats["delivered"] += 1
            self.delivered.append({"start_ms": dl.start_ms, "freq_hz": dl.freq_hz, "sf": dl.sf,
                                   "size": len(dl.data)})
        return found


class Receiver:
    """A LoRa receiver's demodulator, shared by the chip models: from the moment the chip enters RX until
    it leaves, it locks onto the first frame whose preamble it catches (PacketForwarder.take) and holds it
    until the frame's end; a frame whose preamble starts while it is locked onto another is lost (the chip
    demodulates one frame at a time); leaving RX loses the frame in progress. Frames are worked through in
    the order of their times, so a chip model that is asked late (the host was busy) sees what the chip
    would have done meanwhile: every frame that ended, in order. The chip model stores each one (its FIFO or
    buffer holds the last: an earlier one not read by then is overwritten, as on the chips, whose status
    registers describe only the last packet)."""

    def __init__(self, air: PacketForwarder):
        self.air = air
        self.since = None        # simulated ms the chip entered RX, None when not in RX
        self.until = None        # RX single: simulated ms it stops looking for a preamble
        self.single = False      # RX ends with the first frame (RX single), else it stays (RX continuous)
        self.tx_end = None       # simulated ms the chip's last transmission ended: nothing before is heard
        self.current = None      # (downlink, end ms) being demodulated
        self.waiting: list[Downlink] = []
        self.stats = {"received": 0, "lost_busy": 0, "lost_rx_left": 0, "overwritten": 0}

    def start(self, now_ms: float, until_ms: float | None = None, *, single: bool | None = None):
        """The chip enters RX: continuous, or single (ends with a frame; `until_ms`: its timeout)."""
        self.stop()
        self.since, self.until = now_ms, until_ms
        self.single = until_ms is not None if single is None else single

    def stop(self):
        if self.current is not None:
            self.stats["lost_rx_left"] += 1
        self.stats["lost_rx_left"] += len(self.waiting)
        self.since = self.until = self.current = None
        self.waiting = []

    @property
    def listening(self) -> bool:
        return self.since is not None

    def run(self, now_ms: float, *, freq_hz: int, sf: int, bw_khz: int, iq_inverted: bool, on_header, on_done,
            deaf: bool = False) -> bool:
        """Works through the air until `now_ms`: on_header(dl) when a preamble is caught, on_done(dl) when a
        frame ends (`deaf`: the chip's sync word is not LoRaWAN's, it catches nothing). Returns False when RX
        ended by itself (RX single: after a frame, or its timeout with no
        preamble caught); the caller then leaves RX."""
        if self.since is None:
            return True
        horizon = now_ms if self.until is None or self.current is not None else min(now_ms, self.until)
        if not deaf:
            self.waiting += self.air.take(freq_hz=freq_hz, sf=sf, bw_khz=bw_khz, iq_inverted=iq_inverted,
                                          rx_since_ms=self.since, now_ms=horizon, not_before_ms=self.tx_end)
        self.waiting.sort(key=lambda d: d.start_ms)
        while True:
            nxt = self.waiting[0] if self.waiting else None
            if self.current is not None and (nxt is None or nxt.start_ms >= self.current[1]):
                dl, end = self.current
                if end > now_ms:
                    break
                self.current = None
                self.stats["received"] += 1
                on_done(dl)
                if self.single:
                    self.stats["lost_rx_left"] += len(self.waiting)
                    self.waiting = []
                    self.since = None
                    return False
                continue
            if nxt is None:
                break
            self.waiting.pop(0)
            if self.current is not None:
                self.stats["lost_busy"] += 1  # its preamble came while another frame was demodulated
                log.info("radio: downlink at %d lost: the receiver was busy with another", nxt.start_ms)
                continue
            self.current = (nxt, max(nxt.start_ms, self.since) + nxt.toa_ms)
            on_header(nxt)
        if self.current is None and self.until is not None and now_ms >= self.until:
            self.since = None
            return False
        return True
