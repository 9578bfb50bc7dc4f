# LoRa radio drivers (SX1262, SX1276) implementing the MAC's radio interface (bysans/lorawan/radio.py).
# from_board() builds the one a board file's "radio" entry names, from the board object's SPI bus and pins:
#   "radio": {"chip": "sx1262", "spi": 1, "nss": 8, "rst": 12, "busy": 13, "dio1": 14, "tcxo_v": 1.8,
#             "dio2_rf_switch": true}
#   "radio": {"chip": "sx1276", "spi": 1, "nss": 18, "rst": 23, "dio0": 26, "dio1": 33}
from .errors import RadioConfigError, RadioMissing  # noqa: F401


def from_board(board, **kw):
    r = board.definition.get("radio")
    if not r:
        raise RadioConfigError("the board file has no radio")
    chip = r.get("chip")
    spi = board.spi(r.get("spi", 1))
    cs = board.pin(r["nss"], "out", value=1)
    reset = board.pin(r["rst"], "out", value=1) if "rst" in r else None
    if chip == "sx1262":
        from .sx1262 import SX1262

        if "busy" not in r:
            raise RadioConfigError("an SX1262 needs its BUSY pin in the board file")
        tcxo = r.get("tcxo_v")
        return SX1262(spi, cs=cs, busy=board.pin(r["busy"], "in"), reset=reset, clock=board,
                      dio1=board.pin(r["dio1"], "in") if "dio1" in r else None,
                      tcxo_mv=int(tcxo * 1000 + 0.5) if tcxo else 0,
                      dio2_rf_switch=bool(r.get("dio2_rf_switch")), dcdc=bool(r.get("dcdc")), **kw)
    if chip == "sx1276":
        from .sx1276 import SX1276

        return SX1276(spi, cs=cs, reset=reset, clock=board,
                      dio0=board.pin(r["dio0"], "in") if "dio0" in r else None, **kw)
    raise RadioConfigError("no driver for radio chip %r" % chip)
