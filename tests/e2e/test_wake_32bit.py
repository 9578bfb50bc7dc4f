"""A whole wake on the 32-bit interpreter at the smallest board's heap (TTGO LoRa32, docs/boards.md):
sampling, the LoRaWAN join and an uplink over the simulated air, and an OTA check-in that verifies the
release the board runs (lab/wake.py). Needs the 32-bit MicroPython (BYSANS_MICROPYTHON32, or
../shared/tools/build-micropython32's default place); without it the test is skipped and the run says so."""

import pytest

from fleet import boards
from lab.wake import WakeLab



@pytest.mark.xfail(strict=True, reason="issue 12 item 4, open: on 32 bits the wake runs at 126K but not at the "
                   "TTGO's 112K: the cycle's boot needs 124-130K (the LoRaWAN MAC, 42K, opens on top of 68K live; "
                   "MemoryError opening it), the check-in's own boot 114-118K (docs/boards.md); "
                   "strict: remove this mark once it fits")
def test_whole_wake_runs_at_the_ttgo_heap_on_32_bits(tmp_path, mp32):
    heap = boards.load("ttgo_lora32_v21")["heap"]
    assert boards.load("virtual_ttgo")["heap"] == heap
    with WakeLab(tmp_path, "virtual_ttgo", interpreter=mp32) as w:
        ok, lines = w.wake(heap)
        assert ok, w.last_text[-3000:]
    [wake] = [ln for ln in lines if " wake " in ln]
    assert "joined" in wake and "sent 1" in wake, wake
    assert any("ota: confirmed" in ln for ln in lines), lines
