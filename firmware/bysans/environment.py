# Environment aggregation: one sampler channel per quantity in payload_spec's ENV column order; each
# interval closes into the means (rounded half up) and a fault mask for the channels with no good sample.
# Drivers hand over scaled integers (BME280 integer compensation: cdeg, Pa, permille; SCD4x ppm; SPS30
# ug/m3; battery mV); a driver error becomes fault(column).
from micropython import const

from bysans import payload_spec as S
from bysans.sampler import Sampler

# plausible ranges; a value outside is counted as a fault, not averaged in
_LIMITS = (
    (-4000, 8500),     # temp_cdeg: the BME280's operating range
    (0, 1000),         # rh_permille
    (30000, 110000),   # pressure_pa
    (0, 40000),        # co2_ppm: the SCD4x's range
    (0, 1000),         # pm2_5_ugm3: the SPS30's range
    (0, 1000),         # pm10_ugm3
    (0, 10000),        # batt_mv
)
_COLUMNS = const(7)


class EnvNode:
    """Per sample: put(column, value) or fault(column), column = payload_spec.E_*.
    Per interval: close(row) writes the means into row and returns the fault mask."""

    def __init__(self, ring=16):
        self.sampler = Sampler(tuple(ch[0] for ch in S.ENV_CHANNELS), ring)

    def put(self, column, value):
        lim = _LIMITS[column]
        if lim[0] <= value <= lim[1]:
            self.sampler.push(column, value)
        else:
            self.sampler.fault(column)

    def fault(self, column):
        self.sampler.fault(column)

    def close(self, row):
        sp = self.sampler
        faults = 0
        for c in range(_COLUMNS):
            if sp.n(c):
                row[c] = sp.mean(c)
            else:
                row[c] = 0
                faults |= 1 << c
        sp.new_interval()
        return faults
