# Errors every driver raises. The app catches SensorError and puts a fault marker in that sensor's channels;
# the subclass says what went wrong, so a technician's log reads "crc" or "missing", not a traceback.


class SensorError(Exception):
    """Base of every driver error. args[0] names the sensor, args[1] says what happened."""


class SensorMissing(SensorError):
    """No answer: absent, unpowered, NACK on its address, or another chip at that address."""


class CrcError(SensorError):
    """A word or frame whose checksum does not match: a noisy bus or cable."""


class SensorTimeout(SensorError):
    """The chip acknowledged but its result was not ready within the bounded wait."""


class OutOfRange(SensorError):
    """The chip answered but has no valid result (no echo, signal too weak, skipped measurement)."""


def missing(name, err):
    """A bus OSError (ENODEV/EIO/ETIMEDOUT from machine.I2C) as a SensorMissing naming the sensor."""
    code = err.args[0] if err.args else 0
    return SensorMissing(name, "no answer on the bus (errno %d)" % code)
