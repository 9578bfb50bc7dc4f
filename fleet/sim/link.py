"""The serial wire between host and virtual board: an optional baud limit and byte counters."""

import asyncio
import time

BITS_PER_BYTE = 10  # 8N1: start bit, 8 data bits, stop bit


class Pacer:
    """Spaces writes so that bytes leave no faster than a UART at `baud` would send them.

    `ready`: when the bytes were there to send (time.monotonic()). A UART with bytes waiting sends them
    back to back, so a chunk that was waiting starts when the one before it ended, not when this process
    got round to it: an event loop that wakes late (asyncio.sleep overshoots by a millisecond or more on
    a busy machine, longer than 64 bytes take at 921600 baud) must not slow the line below its baud. No
    byte arrives before a real line would deliver it: each chunk ends no earlier than `ready` plus its
    own transmission time."""

    def __init__(self, baud: int | None):
        self.baud = baud
        self._free_at = 0.0

    def free(self):
        """What was still to be sent is lost (the UART lost power): the line is free now."""
        self._free_at = 0.0

    async def wait(self, nbytes: int, ready: float | None = None):
        if not self.baud:
            return
        now = time.monotonic()
        start = max(self._free_at, now if ready is None else min(ready, now))
        self._free_at = start + nbytes * BITS_PER_BYTE / self.baud
        delay = self._free_at - now
        if delay > 0.0005:
            await asyncio.sleep(delay)


class Counters:
    """Bytes on the wire in each direction, as a logic analyser on TX/RX would count them."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.host_to_board = 0
        self.board_to_host = 0
        self.dropped = 0

    def as_dict(self):
        return {"host_to_board": self.host_to_board, "board_to_host": self.board_to_host,
                "dropped": self.dropped}
