# Waste-bin logic: fill from distance, pickup, fire alarm, fill-rate trend, and one interval's reading.
from array import array

from bysans import payload_spec as S
from bysans.waste import FillTrend, FireDetector, PickupDetector, WasteConfigError, WasteNode, fill_bp


def test_fill_from_distance_depth_and_offset():
    # sensor 150 mm above the rim, 1000 mm from rim to bottom
    assert fill_bp(1150, 1000, 150) == 0
    assert fill_bp(150, 1000, 150) == 10000
    assert fill_bp(650, 1000, 150) == 5000
    assert fill_bp(1149, 1000, 150) == 10  # 1 mm = 0.1 % here
    assert fill_bp(100, 1000, 150) == 10000  # above the rim: full, not more
    assert fill_bp(1500, 1000, 150) == 0


def test_pickup_needs_tilt_and_drop():
    p = PickupDetector(drop_bp=3000, tilt_intervals=2)
    assert not p.update(8000, False)
    assert not p.update(1000, False)  # a drop without a tilt: a glitch, not a pickup
    assert not p.update(8000, True)   # a tilt without a drop
    assert p.update(500, False)       # drop in the interval after the tilt
    assert not p.update(400, False)
    p2 = PickupDetector(drop_bp=3000)
    p2.update(9000, False)
    assert p2.update(300, True)


def _node(**kw):
    return WasteNode(depth_mm=1000, offset_mm=150, burst=5,
                     fire=FireDetector(threshold_cdeg=5700, rise_cdeg=800, window_samples=3), **kw)


def test_fire_needs_threshold_and_rate_of_rise():
    slow = _node()
    for t in range(3000, 7000, 100):  # 1 degC per sample: hot sun, no fire
        assert not slow.temperature(t)
    assert not slow.fire_active
    fast = _node()
    started = [fast.temperature(t) for t in (2000, 2100, 2200, 4000, 5800, 7000)]
    assert started == [False, False, False, False, True, False]  # starts once, at 58 degC rising fast
    assert fast.fire_active
    fast.temperature(5000)
    assert fast.fire_active  # held above clear (47 degC)
    fast.temperature(4000)
    assert not fast.fire_active


def test_fused_sample_equals_the_separate_steps():
    a, b = _node(), _node()
    bursts = [array("h", [800 - i, 0 if i % 3 else 250, 801 - i, 799 - i, 6000]) for i in range(40)]
    bursts.append(array("h", [0, 0, 0, 812, 0]))  # no valid median: a fault
    temps = [2000 + (i * 397) % 900 for i in range(40)] + [2000]
    temps[30:34] = [3000, 5000, 6500, 7000]
    fired_a, fired_b = [], []
    for burst, t in zip(bursts, temps):
        fired_a.append(a.sample(burst, t, 3700 - len(fired_a)))
        b.distance(burst)
        fired_b.append(b.temperature(t))
        b.battery(3700 - len(fired_b) + 1)
    assert fired_a == fired_b and True in fired_a
    end = a.sampler.extra + 5  # rings, statistics, fire state (not the sort scratch)
    assert list(a.sampler.state)[:end] == list(b.sampler.state)[:end]


def test_close_writes_a_reading_in_payload_columns():
    node = _node()
    row = array("i", bytes(4 * len(S.WASTE_CHANNELS)))
    burst = array("h", [650, 651, 649, 2000, 650])
    node.sample(burst, -350, 3712)
    node.sample(burst, -340, 3708)
    assert node.close(0, row) == 0
    assert list(row) == [650, 5000, -345, 3710, 0]
    # nothing sampled: every channel faulty, the node keeps going
    faults = node.close(15, row)
    assert faults == (1 << S.W_DIST) | (1 << S.W_FILL) | (1 << S.W_TEMP) | (1 << S.W_BATT)
    # a pickup: tilted, then the fill drops
    node.sample(burst, 1000, 3700)
    node.close(30, row)
    node.tilt(True)
    node.sample(array("h", [1140, 1141, 1139, 1140, 1140]), 1000, 3700)
    node.close(45, row)
    assert row[S.W_FLAGS] == S.FLAG_TILT | S.FLAG_PICKUP and row[S.W_FILL] == 100


def test_trend_is_least_squares_per_hour():
    tr = FillTrend(size=8)
    assert tr.rate_bp_h() == 0
    for i in range(6):
        tr.add(i * 15, 2000 + 50 * i + (7 if i % 2 else -7))  # 200 bp/h with noise
    assert tr.rate_bp_h() == 205  # least squares in floats (numpy.polyfit): 204.8 bp/h
    for i in range(10):  # the window keeps the newest 8 points
        tr.add(1000 + i * 60, 100 * i)
    assert tr.rate_bp_h() == 100


def test_bad_settings_are_named_errors():
    for bad in (lambda: WasteNode(depth_mm=0, offset_mm=10), lambda: PickupDetector(drop_bp=0),
                lambda: FireDetector(window_samples=0)):
        try:
            bad()
        except WasteConfigError:
            continue
        raise AssertionError("accepted a bad setting")
