# The sampler's ring buffers and interval statistics, and proof that the per-sample path allocates
# nothing (micropython.heap_lock() makes any allocation raise MemoryError).
# mp32: also on 32 bits at the smallest board's heap (tests/firmware/conftest.py)
# mp: -X heapsize=128K
import gc
from array import array

import micropython

from bysans.environment import EnvNode
from bysans.sampler import NO_READING, Sampler, median_of
from bysans import payload_spec as S
from bysans.waste import WasteNode


def test_statistics_and_negative_values():
    sp = Sampler(("temp_cdeg", "pressure_pa"), 4)
    for v in (-300, -250, -410, -280):
        sp.push(0, v)
    assert (sp.n(0), sp.min(0), sp.max(0), sp.last(0)) == (4, -410, -250, -280)
    assert sp.mean(0) == -310  # -1240 / 4
    sp.push(1, 101325)
    sp.push(1, 101326)
    assert sp.mean(1) == 101326  # 101325.5 rounds half up
    sp.new_interval()
    assert sp.n(0) == 0 and sp.mean(0) == 0 and sp.recent(0) == -280  # the ring keeps its samples


def test_ring_wraps_and_recent():
    sp = Sampler(("dist_mm",), 3)
    assert sp.recent(0) is None
    for v in range(1, 6):
        sp.push(0, v)
    assert [sp.recent(0, k) for k in range(4)] == [5, 4, 3, None]
    assert sp.count(0) == 3 and sp.n(0) == 5  # the interval saw all five


def test_median_rejects_echoes_and_dropouts():
    scratch = array("h", bytes(18))
    assert median_of(array("h", [812, 250, 815, 813, 6000]), 5, scratch) == 813
    assert median_of(array("h", [812, 0, 815, 0, -1]), 5, scratch) == NO_READING  # 2 of 5 valid
    assert median_of(array("h", [812, 0, 815, 814, 0]), 5, scratch) == 814


def test_faults_are_counted_not_averaged():
    sp = Sampler(("co2_ppm",), 4)
    sp.fault(0)
    sp.push(0, 500)
    assert sp.faults(0) == 1 and sp.mean(0) == 500


def _hot_path(node, env, sp, burst, scratch):
    for i in range(200):
        node.sample(burst, -150 + i, 3700)
        node.distance(burst)
        node.temperature(2000 + i)
        node.battery(3699)
        node.tilt(i == 50)
        env.put(S.E_TEMP, 1234 + i)
        env.put(S.E_PRESSURE, 101325)
        env.put(S.E_CO2, 70000)  # implausible: a fault
        env.fault(S.E_PM10)
        sp.push(0, -i)
        sp.fault(0)
        median_of(burst, 5, scratch)


def test_per_sample_path_allocates_nothing():
    node = WasteNode(depth_mm=1000, offset_mm=150)
    env = EnvNode()
    sp = Sampler(("x",), 8)
    burst = array("h", [800, 0, 805, 2500, 801])
    scratch = array("h", bytes(10))
    _hot_path(node, env, sp, burst, scratch)  # first calls may intern or cache; then it must be flat
    gc.collect()
    before = gc.mem_alloc()
    micropython.heap_lock()
    try:
        _hot_path(node, env, sp, burst, scratch)
    finally:
        micropython.heap_unlock()
    assert gc.mem_alloc() == before
