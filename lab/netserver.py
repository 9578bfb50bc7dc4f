"""A minimal LoRaWAN 1.0.x network server behind the Semtech packet-forwarder protocol (v2, UDP): enough to
join devices, check and decrypt their uplinks and send them downlinks, for tests and the simulated air.

    with NetworkServer() as ns:                        # 127.0.0.1, a free port: ns.address
        ns.add_device(dev_eui, join_eui, app_key)
        ... point gateways (or `fleet sim start --forwarder 127.0.0.1:PORT`) at ns.address ...
        ns.queue(dev_eui, fport=10, payload=b"\\x01")  # goes out in RX1 after the device's next uplink
        ns.wait_for(lambda: len(ns.uplinks) >= 3, timeout=30)

It answers PUSH_DATA with PUSH_ACK and PULL_DATA with PULL_ACK, answers join-requests with join-accepts
(5 s after the request, in RX1), checks every data uplink's MIC with the frame library (fleet.lorawan), keeps
the 32-bit frame counters, and records what it refuses: a bad MIC, a replayed or reused FCnt, a reused
DevNonce. Keys stay in memory and never appear in its records or logs.

FUOTA set-up (docs/formats/fuota.md): an AppTimeReq on FPort 202 is answered in the same uplink's RX1 with
the gateway's time of the uplink (TS003); the answers on FPort 200 (TS005) land in `mc_answers`. Multicast:

    g = ns.add_group(0, mc_addr=0x01FF0001, mc_key=key)   # fleet.fuota.multicast.Group
    ns.queue_group_setup(dev_eui, g)                      # McGroupSetupReq, McKey under the device's McKEKey
    ns.queue(dev_eui, fport=200, payload=class_c_session_req(...))
    ns.send_multicast(g, 201, payload, at_gps=t, freq_hz=869_525_000, dr=5)  # class C, via the gateways
"""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
import time
from dataclasses import dataclass, field

from fleet.errors import AirError, LoRaWANFrameError
from fleet.fuota import clock as fuota_clock
from fleet.fuota import multicast as fuota_mc
from fleet.lorawan import maccommands
from fleet.lorawan.crypto import Key
from fleet.lorawan.phy import DataFrame, JoinAccept, JoinRequest, MType, build_data_frame, build_join_accept, decode
from fleet.lorawan.semtech_udp import (PULL_ACK, PULL_DATA, PULL_RESP, PUSH_ACK, PUSH_DATA, TMST_WRAP, TX_ACK, datagram,
                                       datr, parse)

log = logging.getLogger("lab.netserver")

RX2_FREQ_MHZ = 869.525
RX2_DATR = datr(12, 125)
EU868_DR = ((12, 125), (11, 125), (10, 125), (9, 125), (8, 125), (7, 125), (7, 250))  # DR -> (SF, kHz)


def _millis(rxpk: dict) -> int:
    # the milliseconds of a gateway's `time` ("...:SS.ffffffZ"), which gps seconds drop
    text = rxpk.get("time", "")
    frac = text.rpartition(".")[2].rstrip("Z")
    return int(frac[:3].ljust(3, "0")) if frac.isdigit() else 0


@dataclass
class Session:
    dev_addr: int
    nwk_skey: Key
    app_skey: Key
    dev_nonce: int
    fcnt_up: int = -1      # last accepted
    fcnt_down: int = 0     # next to use


@dataclass
class Device:
    dev_eui: bytes
    join_eui: bytes
    app_key: Key
    gen_app_key: Key | None = None   # TS005 for LoRaWAN 1.0.x; None: the AppKey (docs/formats/fuota.md)
    dev_nonces: list = field(default_factory=list)
    gateway: str | None = None       # the gateway that heard its last uplink
    session: Session | None = None
    sessions: list = field(default_factory=list)
    queue: list = field(default_factory=list)

    def __repr__(self):
        return f"<Device {self.dev_eui.hex()}>"


@dataclass
class Uplink:
    """A data uplink the server accepted (MIC good, counter fresh)."""

    dev_eui: str
    dev_addr: int
    fcnt: int
    fport: int | None
    payload: bytes
    mac_commands: list
    confirmed: bool
    adr: bool
    ack: bool
    rxpk: dict
    gateway: str
    phy: bytes
    received_at: float


@dataclass
class Queued:
    fport: int | None
    payload: bytes
    fopts: bytes
    confirmed: bool
    rx2: bool


class NetworkServer:
    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, net_id: int = 0x000013,
                 dev_addr_base: int = 0x26011000, rx1_delay_s: int = 1, join_delay_s: int = 5):
        self.host, self.port = host, port
        self.net_id = net_id
        self.rx1_delay_s = rx1_delay_s
        self.join_delay_s = join_delay_s
        self._next_addr = dev_addr_base
        self._join_nonce = 0
        self.devices: dict[bytes, Device] = {}
        self.gateways: dict[str, tuple] = {}   # gateway EUI hex -> address of its PULL_DATA
        self.uplinks: list[Uplink] = []
        self.joins: list[dict] = []            # {"dev_eui", "dev_nonce", "dev_addr", "gateway"}
        self.downlinks: list[dict] = []        # every PULL_RESP sent: {"dev_eui", "fcnt", "fport", "txpk", "token"}
        self.tx_acks: list[dict] = []          # {"token", "gateway", "error"}
        self.problems: list[dict] = []         # {"kind": "bad_mic" | "fcnt_reused" | "devnonce_reused" | ..., ...}
        self.counters = {"push_data": 0, "pull_data": 0, "rxpk": 0, "tx_ack": 0}
        self.answer_app_time = True            # answer AppTimeReq (TS003) on FPort 202
        self.clock_syncs: list[dict] = []      # {"dev_eui", "device_time", "server_time", "correction", "token"}
        self.mc_answers: list[dict] = []       # TS005 answers: {"dev_eui", "name", ...} (fleet.fuota.multicast)
        self.groups: dict[int, fuota_mc.Group] = {}
        self.multicasts: list[dict] = []       # every class C multicast frame sent: {"gid", "fcnt", "gateway", "txpk"}
        self._gw_time: dict[str, tuple[int, int]] = {}  # gateway -> (tmst, Unix ms) of its last uplink
        # The network's own GPS clock (None: each gateway's time is the network's). Set, it is a function
        # giving the network's GPS time now; a gateway's clock (a virtual board's, its own from its boot) is
        # then mapped onto it by an offset fixed when that gateway is first heard (as a real network's
        # gateways are GPS-disciplined): AppTimeAns answers in the network's time, so every synced device
        # agrees on it, and a multicast frame's GPS time is converted to each gateway's counter.
        self.gps_clock = None
        self.gw_offset: dict[str, float] = {}  # gateway -> network GPS s - gateway GPS s
        self._lock = threading.RLock()
        self._sock = None
        self._thread = None
        self._stop = threading.Event()

    # ---- life ---------------------------------------------------------------------------------------
    def start(self):
        self._sock = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_DGRAM)
        try:
            self._sock.bind((self.host, self.port))
        except OSError as e:
            self._sock.close()
            raise AirError(f"the network server cannot listen on UDP {self.host}:{self.port}: {e.strerror or e}")
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="netserver", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2)
        if self._sock is not None:
            self._sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    # ---- devices and downlinks ----------------------------------------------------------------------
    def add_device(self, dev_eui: bytes, join_eui: bytes, app_key, gen_app_key=None) -> Device:
        d = Device(bytes(dev_eui), bytes(join_eui), Key(app_key, "AppKey"),
                   None if gen_app_key is None else Key(gen_app_key, "GenAppKey"))
        with self._lock:
            self.devices[d.dev_eui] = d
        return d

    def queue(self, dev_eui: bytes, *, fport: int | None = None, payload: bytes = b"", mac: bytes = b"",
              confirmed: bool = False, rx2: bool = False):
        """A downlink for the device's next uplink. MAC commands (`mac`, downlink CIDs and their
        payloads) go in FOpts, or as the FRMPayload on FPort 0 when fport=0 or there is no payload."""
        if fport is None and payload:
            raise LoRaWANFrameError("an application payload needs an FPort")
        if fport == 0 or (fport is None and len(mac) > 15):
            q = Queued(0, bytes(mac), b"", confirmed, rx2)
        else:
            q = Queued(fport, bytes(payload), bytes(mac), confirmed, rx2)
        with self._lock:
            self.devices[bytes(dev_eui)].queue.append(q)

    # ---- FUOTA set-up: multicast groups and class C --------------------------------------------------
    def add_group(self, gid: int, *, mc_addr: int, mc_key, fcnt: int = 0) -> fuota_mc.Group:
        g = fuota_mc.Group(gid, mc_addr, mc_key, fcnt=fcnt)
        with self._lock:
            self.groups[gid] = g
        return g

    def queue_group_setup(self, dev_eui: bytes, group: fuota_mc.Group):
        """McGroupSetupReq for the device's next uplink, McKey encrypted under that device's McKEKey."""
        dev = self.devices[bytes(dev_eui)]
        self.queue(dev_eui, fport=fuota_mc.PORT, payload=group.setup_req(dev.gen_app_key or dev.app_key))

    def send_multicast(self, group: fuota_mc.Group, fport: int, payload: bytes, *, at_gps: float, freq_hz: int,
                       dr: int, devices=None) -> list[dict]:
        """One multicast frame on the group's counter, sent class C by every gateway that last heard one of
        `devices` (default: all devices), timed by each gateway's counter for GPS time `at_gps`. A gateway
        takes a frame at most 30 s ahead (fleet/sim/devices/air.py): call this shortly before."""
        phy = group.frame(fport, payload)
        return self.send_class_c(phy, at_gps=at_gps, freq_hz=freq_hz, dr=dr, devices=devices,
                                 record={"gid": group.gid, "fcnt": group.fcnt - 1, "fport": fport})

    def send_class_c(self, phy: bytes, *, at_gps: float, freq_hz: int, dr: int, devices=None,
                     record=None) -> list[dict]:
        """A class C frame as it is (a PHYPayload made elsewhere: a deployment folder's frames.txt) through
        the gateways that last heard one of `devices`, at the network's GPS time `at_gps`."""
        sf, bw = EU868_DR[dr]
        sent = []
        with self._lock:
            devs = [self.devices[bytes(d)] for d in devices] if devices is not None else list(self.devices.values())
            gws = sorted({d.gateway for d in devs if d.gateway in self._gw_time})
            for gw in gws:
                tmst, unix_ms = self._gw_time[gw]
                at_ms = (at_gps - self.gw_offset.get(gw, 0) - fuota_clock.gps_time(0)) * 1000
                txpk = {"imme": False, "tmst": int(tmst + (at_ms - unix_ms) * 1000) % TMST_WRAP,
                        "freq": freq_hz / 1e6, "rfch": 0, "powe": 14, "modu": "LORA", "datr": datr(sf, bw),
                        "codr": "4/5", "ipol": True, "size": len(phy), "ncrc": True,
                        "data": base64.b64encode(phy).decode()}
                token = os.urandom(2)
                rec = {**(record or {}), "gateway": gw, "at_gps": at_gps, "txpk": txpk, "token": token.hex()}
                self.multicasts.append(rec)
                self._sock.sendto(datagram(PULL_RESP, token, body=json.dumps({"txpk": txpk}).encode()),
                                  self.gateways[gw])
                sent.append(rec)
        return sent

    def wait_for(self, predicate, timeout: float = 30.0, what: str = "the network server's condition"):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout:.0f} s for {what}")
            time.sleep(0.02)

    # ---- the protocol -------------------------------------------------------------------------------
    def _serve(self):
        while not self._stop.is_set():
            try:
                data, addr = self._sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self._datagram(data, addr)
            except Exception:  # noqa: BLE001 - one bad datagram must not stop the server
                log.exception("netserver: datagram from %s", addr)

    def _datagram(self, data: bytes, addr):
        d = parse(data)
        if d is None:
            return
        token, ident, eui = d.token, d.ident, d.eui.hex()
        if ident == PUSH_DATA:
            self.counters["push_data"] += 1
            self._sock.sendto(datagram(PUSH_ACK, token), addr)
            body = json.loads(d.body or b"{}")
            for rxpk in body.get("rxpk", []):
                self.counters["rxpk"] += 1
                with self._lock:
                    self._rxpk(rxpk, eui, addr)
        elif ident == PULL_DATA:
            self.counters["pull_data"] += 1
            self.gateways[eui] = addr
            self._sock.sendto(datagram(PULL_ACK, token), addr)
        elif ident == TX_ACK:
            self.counters["tx_ack"] += 1
            error = "NONE"
            if d.body:
                try:
                    error = json.loads(d.body).get("txpk_ack", {}).get("error", "NONE")
                except ValueError:
                    error = "?"
            self.tx_acks.append({"token": token.hex(), "gateway": eui, "error": error})

    def _problem(self, kind: str, **kw):
        self.problems.append({"kind": kind, **kw})
        log.info("netserver: %s %s", kind, kw)

    def _rxpk(self, rxpk: dict, gateway: str, addr):
        if rxpk.get("stat", 1) == -1:
            return self._problem("crc_error", gateway=gateway)
        phy = base64.b64decode(rxpk["data"])
        try:
            t = fuota_clock.rxpk_gps_time(rxpk)
            self._gw_time[gateway] = (int(rxpk["tmst"]), (t - fuota_clock.gps_time(0)) * 1000 + _millis(rxpk))
            if self.gps_clock is not None and gateway not in self.gw_offset:
                self.gw_offset[gateway] = self.gps_clock() - (t + _millis(rxpk) / 1000)
        except (LoRaWANFrameError, KeyError, ValueError):
            pass  # a gateway without time: no class C timing through it
        try:
            frame = decode(phy)
        except LoRaWANFrameError as e:
            return self._problem("malformed", gateway=gateway, error=str(e))
        if isinstance(frame, JoinRequest):
            return self._join(frame, rxpk, gateway, addr)
        if isinstance(frame, DataFrame) and frame.mtype.is_uplink:
            return self._data(frame, phy, rxpk, gateway, addr)
        self._problem("unexpected", gateway=gateway, mtype=frame.mtype.label)

    def _join(self, jr: JoinRequest, rxpk, gateway, addr):
        dev = self.devices.get(jr.dev_eui)
        if dev is None or dev.join_eui != jr.join_eui:
            return self._problem("unknown_device", dev_eui=jr.dev_eui.hex())
        if not jr.check_mic(dev.app_key):
            return self._problem("join_bad_mic", dev_eui=jr.dev_eui.hex())
        if jr.dev_nonce in dev.dev_nonces:
            return self._problem("devnonce_reused", dev_eui=jr.dev_eui.hex(), dev_nonce=jr.dev_nonce)
        dev.dev_nonces.append(jr.dev_nonce)
        self._join_nonce += 1
        dev_addr = self._next_addr
        self._next_addr += 1
        accept = JoinAccept(join_nonce=self._join_nonce, net_id=self.net_id, dev_addr=dev_addr, rx_delay=self.rx1_delay_s)
        nwk, app = accept.session_keys(dev.app_key, jr.dev_nonce)
        dev.session = Session(dev_addr, nwk, app, jr.dev_nonce)
        dev.sessions.append(dev.session)
        self.joins.append({"dev_eui": jr.dev_eui.hex(), "dev_nonce": jr.dev_nonce, "dev_addr": dev_addr,
                           "gateway": gateway})
        self._pull_resp(build_join_accept(accept, dev.app_key), rxpk, gateway, addr, self.join_delay_s,
                        {"dev_eui": jr.dev_eui.hex(), "join_accept": True}, rx2=False)

    def _session(self, dev_addr):
        for dev in self.devices.values():
            if dev.session is not None and dev.session.dev_addr == dev_addr:
                return dev
        return None

    def _data(self, f: DataFrame, phy: bytes, rxpk, gateway, addr):
        dev = self._session(f.dev_addr)
        if dev is None:
            return self._problem("unknown_dev_addr", dev_addr=f"{f.dev_addr:08x}")
        s = dev.session
        fcnt16 = f.fcnt & 0xFFFF
        last = s.fcnt_up
        # the 32-bit counter: the smallest value above the last one with these 16 low bits
        full = (max(last, 0) & ~0xFFFF) | fcnt16
        if full <= last:
            full += 0x10000
        g = decode(phy, fcnt_msb=full >> 16)
        if not g.check_mic(s.nwk_skey):
            # a reused counter (a value at or below the last one) would MIC under its own, older value
            old = decode(phy, fcnt_msb=max(last, 0) >> 16)
            if last >= 0 and (old.fcnt <= last) and old.check_mic(s.nwk_skey):
                return self._problem("fcnt_reused", dev_eui=dev.dev_eui.hex(), fcnt=old.fcnt, last=last)
            return self._problem("bad_mic", dev_eui=dev.dev_eui.hex(), fcnt=full)
        s.fcnt_up = full
        payload = b""
        macs = []
        if g.fport == 0:
            macs = maccommands.decode(g.decrypt(nwk_skey=s.nwk_skey), uplink=True)
        else:
            if g.fopts:
                macs = maccommands.decode(g.fopts, uplink=True)
            if g.fport is not None:
                payload = g.decrypt(app_skey=s.app_skey)
        up = Uplink(dev_eui=dev.dev_eui.hex(), dev_addr=f.dev_addr, fcnt=full, fport=g.fport, payload=payload,
                    mac_commands=macs, confirmed=g.mtype == MType.CONFIRMED_UP, adr=g.adr, ack=g.ack, rxpk=rxpk,
                    gateway=gateway, phy=phy, received_at=time.time())
        self.uplinks.append(up)
        dev.gateway = gateway
        if g.fport in (fuota_clock.PORT, fuota_mc.PORT):
            self._fuota_uplink(dev, up)
        if dev.queue or up.confirmed:
            q = dev.queue.pop(0) if dev.queue else Queued(None, b"", b"", False, False)
            fcnt = s.fcnt_down
            s.fcnt_down += 1
            down = build_data_frame(mtype=MType.CONFIRMED_DOWN if q.confirmed else MType.UNCONFIRMED_DOWN,
                                    dev_addr=s.dev_addr, fcnt=fcnt, nwk_skey=s.nwk_skey, app_skey=s.app_skey,
                                    fport=q.fport, payload=q.payload, fopts=q.fopts, ack=up.confirmed)
            self._pull_resp(down, rxpk, gateway, addr, self.rx1_delay_s,
                            {"dev_eui": dev.dev_eui.hex(), "fcnt": fcnt, "fport": q.fport}, rx2=q.rx2)

    def _fuota_uplink(self, dev: Device, up: Uplink):
        try:
            cmds = (fuota_clock if up.fport == fuota_clock.PORT else fuota_mc).parse_uplink(up.payload)
        except LoRaWANFrameError as e:
            return self._problem("fuota_malformed", dev_eui=dev.dev_eui.hex(), fport=up.fport, error=str(e))
        for c in cmds:
            if up.fport == fuota_mc.PORT:
                self.mc_answers.append({"dev_eui": dev.dev_eui.hex(), **c})
            elif c["name"] == "AppTimeReq" and self.answer_app_time:
                server = fuota_clock.rxpk_gps_time(up.rxpk) + round(self.gw_offset.get(dev.gateway, 0))
                corr = fuota_clock.correction(c["device_time"], server)
                self.clock_syncs.append({"dev_eui": dev.dev_eui.hex(), "device_time": c["device_time"],
                                         "server_time": server, "correction": corr, "token": c["token"]})
                # first in the queue: it goes out in this uplink's RX1
                dev.queue.insert(0, Queued(fuota_clock.PORT, fuota_clock.app_time_ans(corr, c["token"]), b"",
                                           False, False))

    def _pull_resp(self, phy: bytes, rxpk: dict, gateway: str, addr, delay_s: int, record: dict, *, rx2: bool):
        if rx2:
            delay_s += 1
            freq, datr = RX2_FREQ_MHZ, RX2_DATR
        else:
            freq, datr = rxpk["freq"], rxpk["datr"]  # EU868 RX1: the uplink's channel, RX1DROffset 0
        txpk = {"imme": False, "tmst": (int(rxpk["tmst"]) + delay_s * 1_000_000) % TMST_WRAP, "freq": freq,
                "rfch": 0, "powe": 14, "modu": "LORA", "datr": datr, "codr": rxpk.get("codr", "4/5"), "ipol": True,
                "size": len(phy), "ncrc": True, "data": base64.b64encode(phy).decode()}
        token = os.urandom(2)
        self.downlinks.append({**record, "txpk": txpk, "token": token.hex(), "phy": phy})
        dest = self.gateways.get(gateway, addr)
        self._sock.sendto(datagram(PULL_RESP, token, body=json.dumps({"txpk": txpk}).encode()), dest)
