"""A hand-driven clock and world for chip-model tests (no supervisor, no real time)."""

from fleet.sim.world import World


class ManualClock:
    def __init__(self, start_ms=1_700_000_000_000):
        self.t = start_ms
        self.speed = 1

    def now_ms(self):
        return self.t

    def advance(self, ms):
        self.t += ms

    def real_seconds(self, sim_ms):
        return sim_ms / 1000


def make_world(**values):
    clock = ManualClock()
    return clock, World(clock, values)
