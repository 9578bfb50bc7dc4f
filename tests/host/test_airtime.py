"""LoRa time on air against REFERENCE.md §1's table (Semtech's calculator values)."""

import pytest

from fleet.airtime import max_app_payload, time_on_air_s, uplink_time_on_air_s
from fleet.errors import UsageError

TABLE_MS = {  # app payload bytes: (SF7, SF10, SF12)
    4: (51.5, 329.7, 1318.9), 6: (51.5, 329.7, 1318.9), 11: (61.7, 370.7, 1482.8),
    15: (66.8, 411.6, 1646.6), 24: (82.2, 493.6, 1974.3), 51: (118.0, 698.4, 2793.5),
}


@pytest.mark.parametrize("app_bytes,expected", sorted(TABLE_MS.items()))
def test_reference_table(app_bytes, expected):
    for sf, ms in zip((7, 10, 12), expected):
        assert uplink_time_on_air_s(app_bytes, sf) * 1000 == pytest.approx(ms, abs=0.05)


def test_steps_not_slopes():
    # airtime grows in steps of (CR + 4) symbols: 5 more bytes can cost nothing at SF12
    assert uplink_time_on_air_s(38, 12) == uplink_time_on_air_s(42, 12)
    assert uplink_time_on_air_s(43, 12) > uplink_time_on_air_s(42, 12)


def test_low_data_rate_optimisation_follows_lorawan():
    # without DE the SF12 frame is shorter; LoRaWAN turns DE on at SF11/12, 125 kHz
    assert time_on_air_s(64, 12, low_dr_optimize=False) < time_on_air_s(64, 12)
    assert time_on_air_s(64, 11, bw_hz=250_000) == time_on_air_s(64, 11, bw_hz=250_000, low_dr_optimize=False)


def test_limits():
    assert max_app_payload(12) == 51 and max_app_payload(9) == 115 and max_app_payload(7) == 222
    with pytest.raises(UsageError):
        uplink_time_on_air_s(10, 13)
