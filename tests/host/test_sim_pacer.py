"""The virtual board's UART pacing (fleet/sim/link.py Pacer): bytes that wait are sent back to back at the
baud, however late the event loop wakes, and none arrives before a real line would deliver it."""

import asyncio
import time

from fleet.sim.link import BITS_PER_BYTE, Pacer

BAUD = 9600
CHUNK = 64
CHUNK_S = CHUNK * BITS_PER_BYTE / BAUD  # 66.7 ms


def _send(chunks: int, late_after: int, late_s: float):
    async def run():
        p = Pacer(BAUD)
        ready = time.monotonic()  # all of it there to send at once
        ends = []
        for i in range(chunks):
            await p.wait(CHUNK, ready)
            ends.append(time.monotonic() - ready)
            if i == late_after:
                time.sleep(late_s)  # the loop is busy elsewhere: it wakes this writer late
        return ends

    return asyncio.run(run())


def test_a_late_wakeup_does_not_slow_the_line_below_its_baud():
    ends = _send(6, late_after=1, late_s=0.15)
    line_s = 6 * CHUNK_S  # 0.4 s: what the UART takes for 384 bytes
    assert ends[-1] < line_s + 0.1  # the old pacer lost the 0.15 s: 0.55 s
    for i, end in enumerate(ends):
        assert end >= (i + 1) * CHUNK_S - 0.001  # never before the line could have carried it


def test_bytes_that_come_after_an_idle_line_start_when_they_come():
    async def run():
        p = Pacer(BAUD)
        await p.wait(CHUNK, time.monotonic())
        await asyncio.sleep(0.2)  # the line idles
        ready = time.monotonic()
        await p.wait(CHUNK, ready)
        return time.monotonic() - ready

    assert asyncio.run(run()) >= CHUNK_S - 0.001  # no credit for the idle time
