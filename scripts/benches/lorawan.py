"""LoRaWAN benchmarks.

lorawan.uplink_cpu_ms: encrypt + MIC of a 24-byte application payload (FRMPayload encryption, B0, AES-CMAC
and the whole 37-byte frame) by the firmware (bysans.lorawan.frames.Framer) on the MicroPython unix port,
the mean of 2000 frames inside one micropython process, timed with time.ticks_us. Baseline: the same frame
built by the host library (fleet.lorawan.build_data_frame) with CPython and `cryptography` (OpenSSL).

lorawan.duty_cycle_violations: one hour of alarms in a burst (an alarm every second, each wanting a 24-byte
uplink at DR5 on the three default EU868 channels) through the firmware's class A MAC with a simulated
clock and radio; an observer outside the MAC counts frames that start less than ToA + ToA x 99 after the
previous frame's start in the same sub-band (REFERENCE §1). Must be 0. Baseline: the violations of a naive
scheduler that sends every alarm at once, round-robin over the same channels.
"""

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

_CPU = r"""
import time
from bysans.lorawan import frames
fr = frames.Framer(0x26011BDA, bytes(range(16)), bytes(range(16, 32)))
payload = bytes(range(24))
for i in range(50):
    fr.build_uplink(i, 2, payload, False, 0x80, None)
N = 2000
t0 = time.ticks_us()
for i in range(N):
    fr.build_uplink(i, 2, payload, False, 0x80, None)
dt = time.ticks_diff(time.ticks_us(), t0)
print(json.dumps({"ms": dt / N / 1000}))
"""

_DUTY = r"""
import math
from bysans.lorawan import mac, region
from bysans.lorawan.errors import DutyCycleBlocked
from bysans.lorawan.radio import MemoryStore

class Clock:
    t = 0
    def ticks_ms(self): return self.t
    def ticks_diff(self, a, b): return a - b
    def sleep_ms(self, ms): self.t += max(ms, 0)

def toa_ms(pl, sf, bw=125):
    tsym = (2 ** sf) / bw
    de = 1 if (bw == 125 and sf >= 11) else 0
    n = 8 + max(math.ceil((8 * pl - 4 * sf + 28 + 16) / (4 * (sf - 2 * de))) * 5, 0)
    return 12.25 * tsym + n * tsym

class Radio:
    def __init__(self, clock):
        self.clock, self.sent = clock, []
    def send(self, frame, freq, sf, bw, power):
        self.sent.append((self.clock.t, len(frame), freq, sf, bw))
        self.clock.t += math.ceil(toa_ms(len(frame), sf, bw))
    def receive(self, freq, sf, bw, timeout, buf):
        self.clock.t += timeout
        return 0

def violations(sent):
    v, last = 0, {}
    for start, n, freq, sf, bw in sent:
        band = "g1" if 868000000 < freq <= 868600000 else str(freq)
        toa = toa_ms(n, sf, bw)
        if band in last and start < last[band][0] + 100 * last[band][1]:
            v += 1
        last[band] = (start, toa)
    return v

HOUR, EVERY, DR = 3600000, 1000, 5
sf, bw = region.DATA_RATES[DR]
# the MAC (joined state restored from a store, as after a deep sleep)
store = MemoryStore({"sa": 0x26011BDA, "sk": bytes(32), "fu": 0, "fd": -1})
clock = Clock()
radio = Radio(clock)
m = mac.ClassA(radio, clock, store, dev_eui=bytes(8), join_eui=bytes(8), app_key=bytes(16), adr=False)
m.plan.tx_dr = DR
sent = blocked = 0
t = 0
while t < HOUR:
    clock.t = max(clock.t, t)
    try:
        m.send(7, bytes(24))
        sent += 1
    except DutyCycleBlocked:
        blocked += 1
    t += EVERY
mac_v = violations(radio.sent)
# the naive scheduler: every alarm goes out at once
naive = Radio(Clock())
t = 0
i = 0
while t < HOUR:
    naive.clock.t = max(naive.clock.t, t)
    naive.send(bytes(37), region.DEFAULT_CHANNELS_HZ[i % 3], sf, bw, 14)
    i += 1
    t += EVERY
print(json.dumps({"violations": mac_v, "sent": sent, "blocked": blocked, "naive": violations(naive.sent),
                  "naive_sent": len(naive.sent)}))
"""


def _mp(body):
    from fleet.resources import firmware_dir, micropython_path

    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "bench.py"
        script.write_text(f"import sys, json\nsys.path.insert(0, {str(firmware_dir())!r})\n" + body)
        p = subprocess.run([micropython_path(), "-X", "heapsize=8M", str(script)], capture_output=True,
                           text=True, timeout=600)
    if p.returncode:
        raise RuntimeError(p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "micropython failed")
    return json.loads(p.stdout.strip().splitlines()[-1])


def _host_uplink_ms():
    from fleet.lorawan import MType, build_data_frame

    nwk, app, payload = bytes(range(16)), bytes(range(16, 32)), bytes(range(24))
    n = 2000
    t0 = time.perf_counter()
    for i in range(n):
        build_data_frame(mtype=MType.UNCONFIRMED_UP, dev_addr=0x26011BDA, fcnt=i, fport=2, payload=payload,
                         nwk_skey=nwk, app_skey=app, adr=True)
    return (time.perf_counter() - t0) / n * 1000


def bench():
    cpu = _mp(_CPU)
    duty = _mp(_DUTY)
    return [
        {"bench": "lorawan.uplink_cpu_ms", "value": round(cpu["ms"], 4), "unit": "ms",
         "baseline": round(_host_uplink_ms(), 4),
         "baseline_what": "the same 24-byte uplink built by fleet.lorawan (CPython + cryptography/OpenSSL)",
         "note": "MicroPython unix port (x64), mean of 2000 frames; not measured on an ESP32"},
        {"bench": "lorawan.duty_cycle_violations", "value": duty["violations"], "unit": "frames",
         "baseline": duty["naive"],
         "baseline_what": "a naive scheduler sending every alarm at once (%d frames)" % duty["naive_sent"],
         "sent": duty["sent"], "refused": duty["blocked"],
         "note": "1 h of alarms every 1 s, 24 B at DR5 on 868.1/868.3/868.5 MHz"},
    ]


BENCHES = [(("lorawan.uplink_cpu_ms", "lorawan.duty_cycle_violations"), bench)]
