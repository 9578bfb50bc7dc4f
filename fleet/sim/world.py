"""The physical world around a virtual board: what its sensors would measure, as time goes by.

Quantities (units in the names):

    temperature_c, pressure_pa, humidity_pct      air (BME280; the SCD4x reads temperature and humidity too)
    co2_ppm                                       CO2 (SCD4x)
    pm1_0, pm2_5, pm4_0, pm10                     particulate mass in ug/m3 (SPS30)
    distance_mm                                   sensor to the bin's contents (VL53L1X and JSN-SR04T)
    accel_x_mg, accel_y_mg, accel_z_mg            acceleration in the sensor's frame (LIS3DH); 1 g = 1000
    battery_mv                                    battery voltage before the board's divider
"""

DEFAULTS = {
    "temperature_c": 21.0,
    "pressure_pa": 101325.0,
    "humidity_pct": 45.0,
    "co2_ppm": 420.0,
    "pm1_0": 3.0,
    "pm2_5": 5.0,
    "pm4_0": 6.0,
    "pm10": 8.0,
    "distance_mm": 1200.0,
    "accel_x_mg": 0.0,
    "accel_y_mg": 0.0,
    "accel_z_mg": 1000.0,
    "battery_mv": 3900.0,
}


class World:
    """Named physical quantities; a scenario may drive them from simulated time."""

    def __init__(self, clock, values: dict | None = None):
        self.clock = clock
        self.values = dict(DEFAULTS)
        self.values.update(values or {})
        self.scenario = None
        self._listeners = []

    def get(self, name: str, at_ms: int | None = None) -> float:
        """The quantity now, or at the simulated time `at_ms` (a scenario's value there)."""
        if self.scenario is not None:
            v = self.scenario.value(name, self.clock.now_ms() if at_ms is None else at_ms)
            if v is not None:
                return v
        return self.values[name]

    def set(self, **values):
        unknown = set(values) - set(self.values)
        if unknown:
            raise KeyError(f"unknown quantity: {', '.join(sorted(unknown))} (known: {', '.join(sorted(self.values))})")
        for k, v in values.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise ValueError(f"{k} must be a number, not {v!r}")
        before = dict(self.values)
        self.values.update(values)
        for listener in self._listeners:
            listener(before, self.values)

    def motion_moments(self, t0_ms: int, t1_ms: int) -> list[int]:
        """Simulated times in (t0_ms, t1_ms] at which the scenario tilts the board (see Scenario.tilt_moments)."""
        if self.scenario is None or t1_ms <= t0_ms:
            return []
        sc = self.scenario
        return [sc.sim_ms(t) for t in sc.tilt_moments(sc.seconds(t0_ms), sc.seconds(t1_ms))]

    def subscribe(self, listener):
        """`listener(before, after)` is called on every set(): chips that latch events (a pickup) use it."""
        self._listeners.append(listener)

    def load_scenario(self, path: str):
        """Drives the world from a scenario file (see fleet/sim/scenario.py)."""
        from .scenario import load

        self.scenario = load(path, self.clock)
