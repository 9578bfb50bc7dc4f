"""Chip models by the type names board files use, and the buses of a virtual board built from its file."""

from .base import AdcDevice, Pins, UartDevice
from .battery import Battery
from .bme280 import BME280
from .jsn_sr04t import JSNSR04T
from .lis3dh import LIS3DH
from .scd4x import SCD4x
from .sps30 import SPS30
from .sx1262 import SX1262
from .sx1276 import SX1276
from .vl53l1x import VL53L1X

DEVICE_TYPES = {cls.kind: cls for cls in (BME280, SCD4x, SPS30, VL53L1X, LIS3DH, JSNSR04T, Battery)}
RADIO_TYPES = {cls.kind: cls for cls in (SX1262, SX1276)}
# keys of a board file's radio entry that are the driver's business, not the model's
_RADIO_DRIVER_ONLY = ("chip", "spi", "tcxo_v", "dio2_rf_switch", "dcdc", "dio2")


def make_device(kind: str, world, **kwargs):
    try:
        cls = DEVICE_TYPES[kind]
    except KeyError:
        raise KeyError(f"no simulated model for sensor type '{kind}' (known: {', '.join(sorted(DEVICE_TYPES))})")
    return cls(world, **kwargs)


class Buses(dict):
    """What build_buses returns: a dict of {bus key: {slot: model}}, where the key is

    * an int N for I2C bus N (slot: the 7-bit address),
    * "uartN" for UART N (slot 0: the peripheral on its other end),
    * "adc" for the ADC pins (slot: the GPIO number),
    * "spiN" for SPI bus N (slot: the chip's NSS pin; the radio sits here);

    and `pins`, the board's GPIO levels, shared with the models that read or drive pins.
    """

    def __init__(self):
        super().__init__()
        self.pins = Pins()

    def i2c(self, bus_id: int) -> dict:
        return self[bus_id]

    def uart(self, uart_id: int):
        return self.get(f"uart{uart_id}", {}).get(0)

    def adc(self, pin: int):
        return self.get("adc", {}).get(pin)

    def radio(self):
        for key, devices in self.items():
            if isinstance(key, str) and key.startswith("spi"):
                for dev in devices.values():
                    if dev.kind in RADIO_TYPES:
                        return dev
        return None


def build_buses(board: dict, world, options: dict | None = None) -> Buses:
    """The simulated chips on a board's buses, from its board file (see Buses).

    `options` carries the supervisor's settings a model may need: "clock", "name", "forwarder"
    ((host, port) of a Semtech packet forwarder's server, or None)."""
    sim = dict(options or {})
    buses = Buses()
    for bus in board.get("i2c", []):
        buses[bus["id"]] = {}
    for s in board.get("sensors", []):
        bus = s.get("bus", "")
        options = {k: v for k, v in s.items() if k not in ("type", "bus")}
        dev = make_device(s["type"], world, pins=buses.pins, **options)
        if bus.startswith("i2c"):
            buses.setdefault(int(bus[3:]), {})[s["address"]] = dev
        elif bus.startswith("uart"):
            if not isinstance(dev, UartDevice):
                raise ValueError(f"sensor type '{s['type']}' is not a UART device")
            buses[bus] = {0: dev}
        else:
            raise ValueError(f"sensor type '{s['type']}': unknown bus {bus!r} (i2cN or uartN)")
    battery = board.get("battery")
    if battery and battery.get("adc_pin") is not None:
        options = {k: v for k, v in battery.items() if k in ("adc_pin", "divider_ohm", "enable_pin", "enable_level")}
        dev = make_device("battery", world, pins=buses.pins, **options)
        assert isinstance(dev, AdcDevice)
        buses.setdefault("adc", {})[battery["adc_pin"]] = dev
    radio = board.get("radio")
    if radio and radio.get("chip") in RADIO_TYPES:
        kw = {k: v for k, v in radio.items() if k not in _RADIO_DRIVER_ONLY}
        dev = RADIO_TYPES[radio["chip"]](world, pins=buses.pins, clock=sim.get("clock"),
                                         name=sim.get("name", board.get("name", "vb")),
                                         forwarder=sim.get("forwarder"), **kw)
        buses.setdefault(f"spi{radio.get('spi', 1)}", {})[radio["nss"]] = dev
    return buses
