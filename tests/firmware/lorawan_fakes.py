# Test doubles for the LoRaWAN MAC under MicroPython: a clock that only moves when told, a radio that
# records what it sends and delivers scripted downlinks inside the receive windows, and a minimal network
# server (join-accept built with AES *decrypt*, MIC checked, FRMPayload decrypted) to play against.
import cryptolib
import math
import struct

from bysans.lorawan import crypto, frames


class FakeClock:
    def __init__(self, t=0):
        self.t = t

    def ticks_ms(self):
        return self.t

    def ticks_diff(self, a, b):
        return a - b

    def sleep_ms(self, ms):
        if ms > 0:
            self.t += ms


def toa_ms_float(pl, sf, bw_khz=125, crc=1):
    # REFERENCE §1 in floating point, written independently of region.time_on_air_us
    tsym = (2 ** sf) / bw_khz  # ms
    de = 1 if (bw_khz == 125 and sf >= 11) else 0
    n = 8 + max(math.ceil((8 * pl - 4 * sf + 28 + 16 * crc) / (4 * (sf - 2 * de))) * 5, 0)
    return (8 + 4.25) * tsym + n * tsym


class FakeRadio:
    # Downlinks are queued by the network server as (start_ms, freq, sf, bw, frame). receive() delivers
    # one whose start falls inside [now, now + timeout_ms] on the same freq/sf/bw; after listen(), take()
    # delivers the next one whose start came after listen() (class C: the radio never left RX).
    def __init__(self, clock):
        self.clock = clock
        self.sent = []        # (start_ms, end_ms, frame bytes, freq, sf, bw, power)
        self.listens = []     # (start_ms, freq, sf, bw, timeout)
        self.air = []         # queued downlinks
        self.on_send = None   # callback(radio, record) -> the network server reacts
        self.last_snr = 7
        self.last_rssi = -80
        self._rx = None       # (since, freq, sf, bw) while listen()ing

    def send(self, frame, freq, sf, bw, power):
        start = self.clock.t
        toa = toa_ms_float(len(frame), sf, bw)
        self.clock.t += int(math.ceil(toa))
        rec = (start, self.clock.t, bytes(frame), freq, sf, bw, power)
        self.sent.append(rec)
        if self.on_send:
            self.on_send(self, rec)

    def listen(self, freq, sf, bw):
        self._rx = (self.clock.t, freq, sf, bw)

    def take(self, buf, timeout_ms):
        since, freq, sf, bw = self._rx
        now = self.clock.t
        self.listens.append((now, freq, sf, bw, timeout_ms))
        for i in range(len(self.air)):
            t, f, s, b, frame = self.air[i]
            if f == freq and s == sf and b == bw and since <= t <= now + timeout_ms:
                self.air.pop(i)
                n = len(frame)
                buf[:n] = frame
                end = t + int(math.ceil(toa_ms_float(n, sf, bw, 0)))
                self.clock.t = max(now, end)
                return n
        self.clock.t = now + timeout_ms
        return 0

    def sleep(self):
        self._rx = None

    def receive(self, freq, sf, bw, timeout_ms, buf):
        now = self.clock.t
        self.listens.append((now, freq, sf, bw, timeout_ms))
        for i in range(len(self.air)):
            t, f, s, b, frame = self.air[i]
            if f == freq and s == sf and b == bw and now <= t <= now + timeout_ms:
                self.air.pop(i)
                n = len(frame)
                buf[:n] = frame
                self.clock.t = t + int(math.ceil(toa_ms_float(n, sf, bw, 0)))
                return n
        self.clock.t = now + timeout_ms
        return 0


DATA_RATES = ((12, 125), (11, 125), (10, 125), (9, 125), (8, 125), (7, 125), (7, 250))


class FakeNetwork:
    # Plays the network server for one device. Answers join-requests in RX1 (or RX2 with rx2=True) and
    # delivers queued downlinks after the next uplink.
    def __init__(self, app_key, dev_addr=0x26011BDA, net_id=b"\x13\x00\x00", join_nonce=1):
        self.app_key = app_key
        self.dev_addr = dev_addr
        self.net_id = net_id
        self.join_nonce = join_nonce
        self.nwk = self.app = None
        self.uplinks = []        # (fcnt16, fport, plaintext, fopts, fctrl, mtype)
        self.bad = 0
        self.next_down = []      # raw frames to send after the next uplink
        self.use_rx2 = False
        self.answer_joins = True
        self.cflist = None
        self.dl_settings = 0
        self.rx_delay = 1
        self.last_join_accept = None

    def attach(self, radio):
        radio.on_send = self.on_send

    def on_send(self, radio, rec):
        start, end, frame, freq, sf, bw, power = rec
        mtype = frame[0] >> 5
        if mtype == 0:
            self._join(radio, end, frame, freq, sf, bw)
        elif mtype in (2, 4):
            self._uplink(radio, end, frame, freq, sf, bw)

    def _window(self, radio, end, delay_ms, freq, sf, bw, frame):
        if self.use_rx2:
            radio.air.append((end + delay_ms + 1000, 869525000, 12, 125, frame))
        else:
            radio.air.append((end + delay_ms, freq, sf, bw, frame))

    def _join(self, radio, end, frame, freq, sf, bw):
        c = crypto.Cmac(self.app_key)
        if c.mac(frame[:19])[:4] != frame[19:23]:
            self.bad += 1
            return
        if not self.answer_joins:
            return
        dev_nonce = frame[17] | frame[18] << 8
        jn = struct.pack("<I", self.join_nonce)[:3]
        body = bytearray(b"\x20" + jn + self.net_id + struct.pack("<I", self.dev_addr)
                         + bytes([self.dl_settings, self.rx_delay]))
        if self.cflist:
            body += self.cflist
        body += c.mac(body)[:4]
        self.last_join_accept = self.encrypt_join_accept(body)
        self.nwk, self.app = crypto.derive_session_keys(self.app_key, jn, self.net_id, dev_nonce)
        self.join_nonce += 1
        self.fcnt_down = 0
        self._window(radio, end, 5000, freq, sf, bw, self.last_join_accept)

    def encrypt_join_accept(self, plain):
        dec = cryptolib.aes(self.app_key, 1)
        out = bytearray(plain)
        for off in range(1, len(out), 16):
            out[off:off + 16] = dec.decrypt(bytes(out[off:off + 16]))
        return bytes(out)

    def _uplink(self, radio, end, frame, freq, sf, bw):
        addr = struct.unpack("<I", frame[1:5])[0]
        fctrl = frame[5]
        fcnt = frame[6] | frame[7] << 8
        nopts = fctrl & 15
        msg = frame[:-4]
        b0 = bytearray(16)
        crypto.fill_b0(b0, addr, fcnt, False, len(msg))
        if crypto.Cmac(self.nwk).mac(bytes(b0) + msg)[:4] != frame[-4:]:
            self.bad += 1
            return
        fopts = frame[8:8 + nopts]
        port = None
        plain = b""
        if len(msg) > 8 + nopts:
            port = msg[8 + nopts]
            plain = bytearray(msg[9 + nopts:])
            crypto.FrameCipher(self.nwk if port == 0 else self.app).crypt(plain, 0, len(plain), addr, fcnt,
                                                                         False)
            plain = bytes(plain)
        self.uplinks.append((fcnt, port, plain, bytes(fopts), fctrl, frame[0] >> 5))
        if self.next_down:
            self._window(radio, end, 1000, freq, sf, bw, self.next_down.pop(0))

    def downlink(self, port=None, payload=b"", fopts=b"", fcnt=None, confirmed=False, ack=False,
                 nwk=None, dev_addr=None):
        # builds a downlink the way a network server does (and queues nothing: see queue())
        if fcnt is None:
            fcnt = self.fcnt_down
            self.fcnt_down += 1
        addr = self.dev_addr if dev_addr is None else dev_addr
        nwk = nwk or self.nwk
        fctrl = len(fopts) | (0x20 if ack else 0)
        msg = bytearray(bytes([0xA0 if confirmed else 0x60]) + struct.pack("<IBH", addr, fctrl,
                                                                            fcnt & 0xFFFF) + fopts)
        if port is not None:
            p = bytearray(payload)
            crypto.FrameCipher(self.nwk if port == 0 else self.app).crypt(p, 0, len(p), addr, fcnt, True)
            msg += bytes([port]) + p
        b0 = bytearray(16)
        crypto.fill_b0(b0, addr, fcnt, True, len(msg))
        return bytes(msg) + crypto.Cmac(nwk).mac(bytes(b0) + msg)[:4]

    def queue(self, frame):
        self.next_down.append(frame)


