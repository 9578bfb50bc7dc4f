"""fleet/serve/checkins.py: the one check-in writer records what queued meanwhile in one batch, in arrival
order, answers each check-in with its own result, and a batch that fails as a whole is recorded one check-in
at a time, so only the bad one fails."""

import threading
from concurrent.futures import wait

import pytest

from fleet.errors import UsageError
from fleet.serve.checkins import CheckinWriter


class FakeStore:
    """Records the batches; a body b"boom" makes the whole batch fail, b"usage" is answered UsageError."""

    def __init__(self, gate=None):
        self.batches = []
        self.gate = gate

    def checkin_batch(self, items, repo_dir=None, *, poll_s, accept_keyless):
        if self.gate is not None:
            self.gate.wait(5)
        self.batches.append([b for b, _ in items])
        if any(b == b"boom" for b, _ in items):
            raise RuntimeError("the database went away")
        return [UsageError("bad") if b == b"usage" else {"take": b.decode(), "mac": m} for b, m in items]


def test_what_queues_meanwhile_is_one_batch_in_arrival_order():
    gate = threading.Event()
    store = FakeStore(gate)
    w = CheckinWriter(store, poll_s=60)
    try:
        first = w.submit(b"0", "m0")  # the writer takes it and waits at the gate
        rest = [w.submit(str(i).encode(), f"m{i}") for i in range(1, 50)]
        gate.set()
        wait([first, *rest], timeout=10)
        assert [f.result() for f in [first, *rest]] == [{"take": str(i), "mac": f"m{i}"} for i in range(50)]
        flat = [b for batch in store.batches for b in batch]
        assert flat == [str(i).encode() for i in range(50)]  # each once, in order
        assert len(store.batches) < 50  # batched
    finally:
        w.close()


def test_a_failing_batch_is_recorded_one_at_a_time_and_only_the_bad_one_fails():
    gate = threading.Event()
    store = FakeStore(gate)
    w = CheckinWriter(store, poll_s=60)
    try:
        futs = [w.submit(b, None) for b in (b"a", b"b", b"boom", b"usage", b"c")]
        gate.set()
        wait(futs, timeout=10)
        assert futs[0].result()["take"] == "a" and futs[1].result()["take"] == "b"
        with pytest.raises(RuntimeError):
            futs[2].result()
        with pytest.raises(UsageError):
            futs[3].result()
        assert futs[4].result()["take"] == "c"
    finally:
        w.close()


def test_close_records_what_is_queued():
    gate = threading.Event()
    store = FakeStore(gate)
    w = CheckinWriter(store, poll_s=60)
    futs = [w.submit(str(i).encode(), None) for i in range(10)]
    gate.set()
    w.close()
    assert all(f.done() and not f.exception() for f in futs)
