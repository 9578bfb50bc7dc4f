# MicroPython side of scripts/benches/firmware_loop.py: one process, the same input, two loops.
# usage: micropython _loop_mp.py FIRMWARE_DIR
# Prints one JSON line: {"fixed_per_s", "float_per_s", "alloc_bytes_per_sample", "ticks"}.
import sys

sys.path.insert(0, sys.argv[1])
import gc
import json
import time
from array import array

from bysans.waste import WasteNode

TICKS = 1000
BURST = 5
REPEATS = 5


def make_input():
    # a bin filling, an echo now and then, a dropout now and then, a warm day (deterministic LCG)
    seed = 12345
    raw = array("h", bytes(2 * TICKS * BURST))
    temp = array("h", bytes(2 * TICKS))
    batt = array("h", bytes(2 * TICKS))
    for t in range(TICKS):
        for k in range(BURST):
            seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
            r = seed % 100
            d = 900 - t // 20 + (seed >> 8) % 7 - 3
            raw[t * BURST + k] = 250 if r < 5 else (0 if r < 8 else d)
        temp[t] = 1500 + (t % 600) - 300
        batt[t] = 3900 - t // 100
    return raw, temp, batt


# The same algorithm written plainly: floats in SI-ish units, lists, sorted().
class PlainChannel:
    def __init__(self, depth):
        self.depth = depth
        self.ring = []
        self.n = 0
        self.min = self.max = self.sum = self.last = 0.0

    def push(self, v):
        self.ring.append(v)
        if len(self.ring) > self.depth:
            self.ring.pop(0)
        if self.n == 0:
            self.min = self.max = v
            self.sum = 0.0
        self.min = min(self.min, v)
        self.max = max(self.max, v)
        self.sum += v
        self.last = v
        self.n += 1


class PlainWaste:
    def __init__(self):
        self.dist, self.temp, self.batt = PlainChannel(32), PlainChannel(32), PlainChannel(32)
        self.fire = False

    def distance(self, burst):
        ok = sorted([x for x in burst if x > 0])
        if len(ok) * 2 >= len(burst):
            self.dist.push(ok[len(ok) // 2])

    def temperature(self, c):
        self.temp.push(c)
        ring = self.temp.ring
        then = ring[-7] if len(ring) >= 7 else ring[0]
        if not self.fire and c >= 57.0 and c - then >= 8.0:
            self.fire = True

    def battery(self, v):
        self.batt.push(v)


def run_fixed(node, bursts, temp, batt, n):
    for t in range(n):
        node.sample(bursts[t], temp[t], batt[t])


def run_plain(node, fraw, ftemp, fbatt, n):
    for t in range(n):
        node.distance(fraw[t])
        node.temperature(ftemp[t])
        node.battery(fbatt[t])


def main():
    raw, temp, batt = make_input()
    fraw = [[raw[t * BURST + k] / 1000 for k in range(BURST)] for t in range(TICKS)]
    ftemp = [temp[t] / 100 for t in range(TICKS)]
    fbatt = [batt[t] / 1000 for t in range(TICKS)]
    # the driver's burst buffers, as a driver would fill them with readinto (allocated before timing)
    bursts = [array("h", raw[t * BURST:(t + 1) * BURST]) for t in range(TICKS)]
    node = WasteNode(depth_mm=1000, offset_mm=150, burst=BURST)
    run_fixed(node, bursts, temp, batt, 50)  # warm up
    gc.collect()
    before = gc.mem_alloc()
    run_fixed(node, bursts, temp, batt, TICKS)
    alloc = gc.mem_alloc() - before
    fixed_us = plain_us = None
    for _ in range(REPEATS):  # best of: the least disturbed run of each
        gc.collect()
        t0 = time.ticks_us()
        run_fixed(node, bursts, temp, batt, TICKS)
        us = time.ticks_diff(time.ticks_us(), t0)
        fixed_us = us if fixed_us is None else min(fixed_us, us)
        plain = PlainWaste()
        gc.collect()
        t0 = time.ticks_us()
        run_plain(plain, fraw, ftemp, fbatt, TICKS)
        us = time.ticks_diff(time.ticks_us(), t0)
        plain_us = us if plain_us is None else min(plain_us, us)
    print(json.dumps({"fixed_per_s": TICKS * 1_000_000 // fixed_us, "float_per_s": TICKS * 1_000_000 // plain_us,
                      "alloc_bytes_per_sample": alloc / TICKS, "ticks": TICKS}))


main()
