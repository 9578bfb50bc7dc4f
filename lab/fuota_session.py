"""A FUOTA session on a simulated clock, for many nodes at once (scripts/benches/fuota.py,
fuota.session_minutes): the gateway's frames with their time on air, a duty-cycle check written apart from
the scheduler that made them, one multicast class C session (fleet.fuota.deploy's plan) to N nodes that each
lose fragments at random, and the baseline: the same payload by unicast class A, one downlink (RX2, on the
same sub-band and data rate) per uplink per device.

The nodes here are decoder instances, not boards: each keeps the GF(2) rows of the fragments it got
(TS004 matrix, firmware/bysans/fuota/frag_spec.py) and notes when they reach full rank; its block is then
rebuilt by fleet.fuota.rebuild from those fragments and compared with the payload.
"""

from __future__ import annotations

import heapq
import random

from fleet.airtime import uplink_time_on_air_s
from fleet.fuota.deploy import EU868_DR, frame_toa_s
from fleet.fuota.rebuild import rebuild
from fleet.fuota.spec import SPEC

UPLINK_DUTY = 0.01      # the device's own uplink sub-band (865-868.6 MHz: 1 %)
UPLINK_BYTES = 5        # an uplink that asks for the next fragment (a FragSessionStatusAns: 5 bytes)
RX2_DELAY_S = 2.0       # RX2 opens 2 s after the uplink ends (RECEIVE_DELAY1 1 s + 1 s)


def duty_violations(frames, duty: float, *, hour_s: float = 3600.0) -> int:
    """Frames (start_s, toa_s) of one gateway on one sub-band that break its duty cycle: a frame that
    starts before the previous one's off time (toa/duty after its start) has passed, or any hour (from a
    frame's start) holding more than duty·3600 s of airtime."""
    fr = sorted(frames)
    bad = 0
    for (s0, t0), (s1, _) in zip(fr, fr[1:]):
        if s1 < s0 + t0 / duty - 1e-9:
            bad += 1
    j, on_air = 0, 0.0
    for i, (s, t) in enumerate(fr):
        while j < len(fr) and fr[j][0] < s + hour_s:
            on_air += fr[j][1]
            j += 1
        if on_air > duty * hour_s + 1e-9:
            bad += 1
        on_air -= t
    return bad


class Rank:
    """The GF(2) rank of the rows of the fragments a node got (rows as ints, bit i = data row i)."""

    def __init__(self, m: int):
        self.m, self.pivots = m, {}

    def add(self, n: int) -> bool:
        """Fragment counter n (from 1); True when it raised the rank."""
        if n <= self.m:
            row = 1 << (n - 1)
        else:
            row = 0
            for c in SPEC.matrix_line(n - self.m, self.m):
                row |= 1 << c
        while row:
            top = row.bit_length() - 1
            if top not in self.pivots:
                self.pivots[top] = row
                return True
            row ^= self.pivots[top]
        return False

    @property
    def full(self) -> bool:
        return len(self.pivots) == self.m


def multicast(plan, *, nodes: int, loss: float, seed: int) -> dict:
    """One class C session of `plan` to `nodes` nodes, each losing each fragment with probability `loss`."""
    rnd = random.Random(seed)
    payloads = plan.data_fragments()
    times = plan.schedule()
    frames = [(t, plan.toa_s) for t in times]
    m, done_at, rebuilt, bad = plan.nb_frag, [], 0, []
    for _ in range(nodes):
        rank, got, at = Rank(m), [], None
        for n, (p, t) in enumerate(zip(payloads, times), 1):
            if rnd.random() < loss:
                continue
            got.append(p)
            if rank.add(n) and rank.full:
                at = t + plan.toa_s
                break
        if at is None:
            continue
        block = rebuild(got, nb_frag=m, padding=plan.session.padding)
        if block == plan.payload:
            rebuilt += 1
            done_at.append(at)
        else:
            bad.append(len(got))
    return {"all_rebuilt_s": max(done_at) if len(done_at) == nodes else None, "rebuilt": rebuilt,
            "wrong_blocks": len(bad), "frames": len(frames), "violations": duty_violations(frames, plan.duty),
            "window_s": 2 ** plan.timeout}


def unicast(plan, *, nodes: int, loss: float, seed: int) -> dict:
    """The baseline: every node gets the M uncoded fragments one at a time, in the RX2 of its own uplinks
    (each uplink asks for the next fragment it lacks; a lost one is asked again), the gateway sending only
    when its sub-band's duty cycle allows; each device's uplinks keep to its own 1 %."""
    rnd = random.Random(seed)
    sf = EU868_DR[plan.dr][0]
    up_toa = uplink_time_on_air_s(UPLINK_BYTES, sf)
    toa = frame_toa_s(plan.fragment_size, plan.dr)
    m = plan.nb_frag
    have = [0] * nodes
    events = [(rnd.uniform(0, up_toa / UPLINK_DUTY), i) for i in range(nodes)]
    heapq.heapify(events)
    gw_free, frames, left, end = 0.0, [], nodes, 0.0
    while left:
        t, i = heapq.heappop(events)
        rx2 = t + up_toa + RX2_DELAY_S
        if rx2 >= gw_free:
            frames.append((rx2, toa))
            gw_free = rx2 + toa / plan.duty
            if rnd.random() >= loss:
                have[i] += 1
                if have[i] == m:
                    left -= 1
                    end = max(end, rx2 + toa)
                    continue
        heapq.heappush(events, (max(t + up_toa / UPLINK_DUTY, rx2 + toa), i))
    return {"all_done_s": end, "frames": len(frames), "violations": duty_violations(frames, plan.duty)}
