"""LoRa time on air (Semtech AN1200.13, SX127x datasheet; REFERENCE.md §1) and LoRaWAN EU868 budgets.

    Tsym = 2^SF / BW;  Tpreamble = (Npre + 4.25) * Tsym
    Nsym = 8 + max(ceil((8 PL - 4 SF + 28 + 16 CRC - 20 IH) / (4 (SF - 2 DE))) * (CR + 4), 0)
    ToA  = Tpreamble + Nsym * Tsym
"""

import math

from .errors import UsageError

LORAWAN_OVERHEAD_BYTES = 13  # MHDR 1, DevAddr 4, FCtrl 1, FCnt 2, FPort 1, MIC 4 (no FOpts)
FAIR_USE_S_PER_DAY = 30.0    # The Things Network: uplink airtime per device per day
DUTY_CYCLE = 0.01            # EU868 sub-band: silent for ToA * 99 after a frame


def max_app_payload(sf: int) -> int:
    """Largest application payload at SF7..SF12, 125 kHz, EU868 (DR5..DR0)."""
    _check_sf(sf)
    return {12: 51, 11: 51, 10: 51, 9: 115, 8: 222, 7: 222}[sf]


def _check_sf(sf: int) -> None:
    if sf not in range(7, 13):
        raise UsageError(f"spreading factor {sf} is not one of 7..12", hint="LoRaWAN EU868 uses SF7 to SF12")


def time_on_air_s(phy_payload_bytes: int, sf: int, *, bw_hz: int = 125_000, cr: int = 1, preamble: int = 8,
                  explicit_header: bool = True, crc: bool = True, low_dr_optimize: bool | None = None) -> float:
    """Seconds on air of one LoRa frame with PL = phy_payload_bytes (the whole PHYPayload).

    cr: 1..4 for 4/5..4/8. low_dr_optimize defaults to on at SF11/SF12 with 125 kHz, as LoRaWAN does.
    """
    _check_sf(sf)
    if phy_payload_bytes < 0 or not 1 <= cr <= 4:
        raise UsageError("payload length must be >= 0 and coding rate 1..4 (4/5..4/8)")
    de = (sf >= 11 and bw_hz == 125_000) if low_dr_optimize is None else low_dr_optimize
    t_sym = (2 ** sf) / bw_hz
    t_pre = (preamble + 4.25) * t_sym
    num = 8 * phy_payload_bytes - 4 * sf + 28 + 16 * int(crc) - 20 * int(not explicit_header)
    n_sym = 8 + max(math.ceil(num / (4 * (sf - 2 * int(de)))) * (cr + 4), 0)
    return t_pre + n_sym * t_sym


def uplink_time_on_air_s(app_payload_bytes: int, sf: int) -> float:
    """Seconds on air of a LoRaWAN uplink carrying app_payload_bytes (EU868, 125 kHz, CR 4/5)."""
    return time_on_air_s(app_payload_bytes + LORAWAN_OVERHEAD_BYTES, sf)
