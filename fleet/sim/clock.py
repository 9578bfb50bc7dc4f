"""Simulated time: real time multiplied by a speed-up factor, continuous across resets and deep sleep."""

import time


class SimClock:
    def __init__(self, speed: int = 1, start_epoch_ms: int | None = None):
        if speed < 1:
            raise ValueError("speed must be a whole number >= 1")
        self.speed = speed
        self._t0 = time.monotonic()
        self._base = int(time.time() * 1000) if start_epoch_ms is None else start_epoch_ms

    def now_ms(self) -> int:
        """Simulated wall-clock time, in milliseconds since 1970."""
        return self._base + int((time.monotonic() - self._t0) * 1000 * self.speed)

    def real_seconds(self, sim_ms: int) -> float:
        """How long `sim_ms` of simulated time takes in real time."""
        return sim_ms / 1000 / self.speed
