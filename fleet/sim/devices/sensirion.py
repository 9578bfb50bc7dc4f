"""What Sensirion's I2C chips (SCD4x, SPS30) share: 16-bit words each followed by a CRC-8 (polynomial 0x31,
init 0xFF), and an answer the host reads out after a command, NACKed when there is none."""

from .base import I2CDevice, Nack


def crc8(data: bytes) -> int:
    crc = 0xFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x31) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def words(*values: int) -> bytes:
    out = bytearray()
    for v in values:
        pair = (v & 0xFFFF).to_bytes(2, "big")
        out += pair + bytes([crc8(pair)])
    return bytes(out)


class SensirionDevice(I2CDevice):
    """A command-level chip: write() sets `answer`; read() hands it out and NACKs when nothing waits."""

    def __init__(self, world, **kw):
        super().__init__(world, **kw)
        self.answer = b""

    def read(self, n: int) -> bytes:
        if not self.answer:
            raise Nack()
        out, self.answer = self.answer[:n], self.answer[n:]
        return out.ljust(n, b"\xff")
