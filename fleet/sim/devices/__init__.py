"""Register-level models of the chips on a virtual board's buses.

A model sees the bus transactions a real chip sees: ``write(data)`` for an I2C write (register pointer
first, then data) and ``read(n)`` for an I2C read from the current pointer. A model that does not answer
its address raises ``Nack``.
"""

from .base import Nack, RegisterDevice  # noqa: F401
from .registry import DEVICE_TYPES, build_buses, make_device  # noqa: F401
