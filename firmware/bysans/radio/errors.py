# Named errors of the radio drivers. They subclass the MAC's RadioError, so the MAC (and the app) catch one
# type for every radio problem.
from bysans.lorawan.radio import RadioError


class RadioMissing(RadioError):
    # the chip does not answer on SPI (wrong pins, no power, another chip than the board file says)
    pass


class RadioBusy(RadioError):
    # SX126x: BUSY stayed high past its timeout (the chip is hung or asleep and cannot wake)
    pass


class RadioTimeout(RadioError):
    # a transmission did not end (no TxDone) within its time on air plus a margin
    pass


class RadioConfigError(RadioError):
    # a parameter the chip cannot take (spreading factor, bandwidth, frame length)
    pass
