"""Power cuts at random moments while virtual boards update back and forth (download, write, switch, first
boot): every time, the board comes back running a confirmed slot whose every file matches its signed
manifest — the old release or the new one, never a mix. scripts/benches/ota.py runs 200+ cuts."""

import pytest

from lab.ota import Lab, powercut_campaign


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    lab = Lab(tmp_path_factory.mktemp("cut"))
    lab.r1 = lab.build("1.0.0")
    yield lab


def test_forty_power_cuts_leave_no_board_unable_to_boot_or_mixed(lab):
    stats = powercut_campaign(lab, name="cut", boards=4, cuts_per_board=10, seed=5)
    assert stats["bricked"] == 0 and not stats["problems"], stats["problems"]
    assert stats["cuts"] == 40
    assert stats["old"] + stats["new"] == 40
    assert stats["new"] > 0 and stats["old"] > 0, stats  # cuts landed both before and after the switch
