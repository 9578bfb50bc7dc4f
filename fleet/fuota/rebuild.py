"""Put a block together from DataFragment payloads (any order, any subset whose rows have full rank), by
Gaussian elimination over GF(2) in memory — the host's counterpart of the device's flash-backed decoder
(firmware/bysans/fuota/frag.py), written separately so each checks the other."""

import binascii
from collections.abc import Iterable

from ..errors import FragmentsError
from .spec import SPEC


def parse_lines(lines: Iterable[str]) -> list[bytes]:
    """Hex lines (blank lines and `#` comments skipped) -> payloads; FragmentsError names a bad line."""
    out = []
    for no, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            out.append(binascii.unhexlify(text))
        except (binascii.Error, ValueError):
            raise FragmentsError(f"line {no} is not hex: {text[:40]!r}",
                                 hint="give the lines 'fleet fuota fragments' prints, one payload each") from None
    return out


def rebuild(payloads: Iterable[bytes], *, nb_frag: int, padding: int = 0) -> bytes:
    """The block (nb_frag·FragSize − padding bytes) from DataFragment payloads (CID included)."""
    if nb_frag < 1:
        raise FragmentsError(f"NbFrag {nb_frag}: a session has at least one fragment")
    pivots: dict[int, tuple[int, int]] = {}  # lowest set column -> (row bits, data)
    size = index = None
    for no, p in enumerate(payloads, 1):
        if len(p) < 3 or p[0] != SPEC.DATA_FRAGMENT_CID:
            raise FragmentsError(f"payload {no} is not a DataFragment (command 0x08 and a 2-byte Index&N)")
        idx, n = SPEC.unpack_data_head(p[1:3])
        if n == 0:
            raise FragmentsError(f"payload {no} has fragment counter 0; counters start at 1")
        if size is None:
            size, index = len(p) - 3, idx
        if len(p) - 3 != size or idx != index:
            raise FragmentsError(f"payload {no} is of another session: {len(p) - 3} bytes, FragIndex {idx} "
                                 f"(the first was {size} bytes, FragIndex {index})")
        bits = 1 << (n - 1) if n <= nb_frag else sum(1 << c for c in SPEC.matrix_line(n - nb_frag, nb_frag))
        data = int.from_bytes(p[3:], "little")
        while bits:
            low = (bits & -bits).bit_length() - 1
            if low not in pivots:
                pivots[low] = (bits, data)
                break
            pbits, pdata = pivots[low]
            bits ^= pbits
            data ^= pdata
    if size is None:
        raise FragmentsError("no fragment lines were given")
    if not 0 <= padding < size:
        raise FragmentsError(f"padding {padding} must be below the fragment size {size}")
    if len(pivots) < nb_frag:
        raise FragmentsError(
            f"too few fragments: their rows have rank {len(pivots)} of {nb_frag}, so {nb_frag - len(pivots)} "
            "data fragments cannot be recovered", hint="give more of the fragments (coded ones count too)")
    solved = [0] * nb_frag
    for c in range(nb_frag - 1, -1, -1):  # back substitution, highest column first
        bits, data = pivots[c]
        rest = bits & ~(1 << c)
        while rest:
            low = (rest & -rest).bit_length() - 1
            data ^= solved[low]
            rest &= rest - 1
        solved[c] = data
    block = b"".join(d.to_bytes(size, "little") for d in solved)
    return block[:len(block) - padding]
