"""Cut a data block into TS004 DataFragment payloads: M uncoded fragments (the block in FragSize pieces, the
last padded with zeros), then R coded ones, fragment N = M + k being the XOR of the data rows of
matrix_line(k, M). Counters run from 1 in send order; each payload starts with the DataFragment CID."""

from dataclasses import dataclass

from ..errors import FragmentsError
from .spec import SPEC

MAX_COUNTER = SPEC.N_MASK  # 14 bits of fragment counter


@dataclass(frozen=True)
class Session:
    """The fields of the FragSessionSetupReq that announces a block's fragments."""

    nb_frag: int
    frag_size: int
    padding: int
    frag_index: int = 0
    descriptor: bytes = b"\x00\x00\x00\x00"
    mc_group_mask: int = 1
    block_ack_delay: int = 0

    @property
    def block_size(self) -> int:
        return self.nb_frag * self.frag_size - self.padding

    def setup_req(self) -> bytes:
        """The FragSessionSetupReq command, CID included (FPort 201)."""
        return SPEC.pack_setup_req(self.frag_index, self.nb_frag, self.frag_size, self.padding, self.descriptor,
                                   mc_group_mask=self.mc_group_mask, block_ack_delay=self.block_ack_delay)


def session_for(size: int, fragment_size: int, *, frag_index: int = 0) -> Session:
    """The session of a `size`-byte block in fragments of `fragment_size` bytes (FragmentsError if it
    cannot be described by TS004's fields)."""
    if not 1 <= fragment_size <= SPEC.MAX_FRAG_SIZE:
        raise FragmentsError(f"fragment size {fragment_size} is outside 1..{SPEC.MAX_FRAG_SIZE} bytes",
                             hint="FragSize is one byte; at EU868 DR0-2 at most 48 bytes fit a DataFragment")
    if size == 0:
        raise FragmentsError("the file is empty: there is nothing to fragment")
    if not 0 <= frag_index <= SPEC.MAX_FRAG_INDEX:
        raise FragmentsError(f"fragmentation session index {frag_index} is outside 0..{SPEC.MAX_FRAG_INDEX}")
    nb_frag = -(-size // fragment_size)
    return Session(nb_frag=nb_frag, frag_size=fragment_size, padding=nb_frag * fragment_size - size,
                   frag_index=frag_index)


def encode(data: bytes, fragment_size: int, redundancy: int, *, frag_index: int = 0) -> tuple[Session, list[bytes]]:
    """(the session, the DataFragment payloads in send order: uncoded first, then `redundancy` coded)."""
    session = session_for(len(data), fragment_size, frag_index=frag_index)
    m, s = session.nb_frag, fragment_size
    if redundancy < 0:
        raise FragmentsError(f"redundancy {redundancy} is negative: give the number of coded fragments, 0 or more")
    if m + redundancy > MAX_COUNTER:
        raise FragmentsError(
            f"{m} fragments plus {redundancy} coded ones exceed the {MAX_COUNTER} fragment counters of a session",
            hint="use a larger --fragment-size, less --redundancy, or split the file")
    block = data + bytes(session.padding)
    rows = [int.from_bytes(block[i * s:(i + 1) * s], "little") for i in range(m)]
    out = [SPEC.pack_data_fragment(frag_index, n + 1, block[n * s:(n + 1) * s]) for n in range(m)]
    for k in range(1, redundancy + 1):
        acc = 0
        for c in SPEC.matrix_line(k, m):
            acc ^= rows[c]
        out.append(SPEC.pack_data_fragment(frag_index, m + k, acc.to_bytes(s, "little")))
    return session, out
