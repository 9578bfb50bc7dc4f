# LoRaWAN Fragmented Data Block Transport (TS004 v1.0.0, FPort 201): the one declaration of its messages and
# of its parity-check matrix. The firmware decoder (bysans/fuota/frag.py) imports it; the host executes this
# file by path (fleet/firmware_data.py) for the encoder, `fleet fuota` and the tests. docs/formats/fuota.md
# describes the same fields for people.
#
# Sources (REFERENCE-2 §5): TS004 v1.0.0 §3 (uberflip 1428356 p.6-10), TS004-2.0.0 annex (p.23-28) for the
# matrix; read against LoRaMac-node LmhpFragmentation.c / FragDecoder.c and brocaar/lorawan
# applayer/fragmentation. Every multi-byte field is little-endian.
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

FPORT = const(201)
PACKAGE_ID = const(3)
PACKAGE_VERSION = const(1)

# command identifiers (the same CID down and up)
PACKAGE_VERSION_CID = const(0x00)   # down: no payload; up: PackageIdentifier u8, PackageVersion u8
STATUS_CID = const(0x01)            # FragSessionStatusReq / Ans
SETUP_CID = const(0x02)             # FragSessionSetupReq / Ans
DELETE_CID = const(0x03)            # FragSessionDeleteReq / Ans
DATA_FRAGMENT_CID = const(0x08)     # DataFragment (down only, the only command of its frame)

# Payload layouts after the CID byte.
# FragSessionSetupReq: FragSession u8 (bits 3:0 McGroupBitMask, 5:4 FragIndex) | NbFrag u16 | FragSize u8 |
#   Control u8 (bits 2:0 BlockAckDelay, 5:3 FragmentationMatrix) | Padding u8 | Descriptor 4 bytes
SETUP_REQ = "<BHBBB4s"
SETUP_REQ_SIZE = const(10)
# FragSessionSetupAns: StatusBitMask u8 (bits 7:6 FragIndex, 3 wrong descriptor, 2 FragIndex not supported,
#   1 not enough memory, 0 encoding unsupported)
SETUP_ENCODING_UNSUPPORTED = const(0x01)
SETUP_NOT_ENOUGH_MEMORY = const(0x02)
SETUP_INDEX_UNSUPPORTED = const(0x04)
SETUP_WRONG_DESCRIPTOR = const(0x08)
# FragSessionStatusReq: FragStatusReqParam u8 (bit 0 Participants, bits 2:1 FragIndex)
STATUS_REQ_SIZE = const(1)
# FragSessionStatusAns: Received&Index u16 (bits 15:14 FragIndex, 13:0 NbFragReceived) | MissingFrag u8 |
#   Status u8 (bit 0 NotEnoughMatrixMemory)
STATUS_ANS = "<HBB"
STATUS_ANS_SIZE = const(4)
STATUS_NOT_ENOUGH_MATRIX_MEMORY = const(0x01)
# FragSessionDeleteReq: Param u8 (bits 1:0 FragIndex); Ans: Status u8 (bit 2 session does not exist, 1:0 index)
DELETE_REQ_SIZE = const(1)
DELETE_NO_SESSION = const(0x04)
# DataFragment: Index&N u16 (bits 15:14 FragIndex, 13:0 N, from 1) | FragSize bytes
DATA_HEAD = "<H"
DATA_HEAD_SIZE = const(2)
N_MASK = const(0x3FFF)              # fragment counters 1..16383
MATRIX_PARITY = const(0)            # FragmentationMatrix 0: the parity-check code below, the only one defined

# Field limits
MAX_FRAG_INDEX = const(3)
MAX_FRAG_SIZE = const(255)


def pack_setup_req(frag_index, nb_frag, frag_size, padding, descriptor=b"\x00\x00\x00\x00", *,
                   mc_group_mask=1, block_ack_delay=0, matrix=MATRIX_PARITY):
    """The FragSessionSetupReq command (CID included)."""
    session = (mc_group_mask & 0x0F) | (frag_index & 0x03) << 4
    control = (block_ack_delay & 0x07) | (matrix & 0x07) << 3
    return bytes([SETUP_CID]) + struct.pack(SETUP_REQ, session, nb_frag, frag_size, control, padding,
                                            bytes(descriptor))


def unpack_setup_req(payload):
    """FragSessionSetupReq payload (after the CID) -> a dict of its fields."""
    session, nb_frag, frag_size, control, padding, descriptor = struct.unpack(SETUP_REQ, payload)
    return {"frag_index": (session >> 4) & 0x03, "mc_group_mask": session & 0x0F, "nb_frag": nb_frag,
            "frag_size": frag_size, "block_ack_delay": control & 0x07, "matrix": (control >> 3) & 0x07,
            "padding": padding, "descriptor": descriptor}


def pack_setup_ans(frag_index, status_bits):
    return bytes([SETUP_CID, (frag_index & 0x03) << 6 | (status_bits & 0x0F)])


def pack_status_req(frag_index, participants):
    return bytes([STATUS_CID, (frag_index & 0x03) << 1 | (1 if participants else 0)])


def pack_status_ans(frag_index, received, missing, status_bits):
    """`received` is kept to its 14 bits, `missing` saturates at 255 (one byte)."""
    return bytes([STATUS_CID]) + struct.pack(STATUS_ANS, (frag_index & 0x03) << 14 | (received & N_MASK),
                                             min(missing, 255), status_bits)


def unpack_status_ans(payload):
    ri, missing, status = struct.unpack(STATUS_ANS, payload)
    return {"frag_index": ri >> 14, "received": ri & N_MASK, "missing": missing,
            "not_enough_matrix_memory": bool(status & STATUS_NOT_ENOUGH_MATRIX_MEMORY)}


def pack_delete_req(frag_index):
    return bytes([DELETE_CID, frag_index & 0x03])


def pack_delete_ans(frag_index, no_session):
    return bytes([DELETE_CID, (frag_index & 0x03) | (DELETE_NO_SESSION if no_session else 0)])


def pack_data_fragment(frag_index, n, fragment):
    """One DataFragment command: CID, Index&N, the fragment's bytes."""
    return bytes([DATA_FRAGMENT_CID]) + struct.pack(DATA_HEAD, (frag_index & 0x03) << 14 | (n & N_MASK)) \
        + bytes(fragment)


def unpack_data_head(payload):
    """DataFragment payload (after the CID) -> (frag_index, n)."""
    v = payload[0] | payload[1] << 8
    return v >> 14, v & N_MASK


# Answer sizes after the CID, for walking a frame of several commands (a request's size is fixed per CID).
REQ_SIZES = {PACKAGE_VERSION_CID: 0, STATUS_CID: STATUS_REQ_SIZE, SETUP_CID: SETUP_REQ_SIZE,
             DELETE_CID: DELETE_REQ_SIZE}


# The parity-check matrix (TS004-2.0.0 annex; LMN FragDecoder.c). Fragment N <= M (M = NbFrag) is data row
# N-1 itself; fragment N > M is the XOR of the data rows whose bit is set in matrix_line(N - M, M).

def prbs23(x):
    """One step of the 23-bit pseudo-random sequence: shift right, feedback of bits 0 xor 5 into bit 22."""
    return (x >> 1) | (((x & 1) ^ ((x >> 5) & 1)) << 22)


def matrix_row(n, m, row):
    """Fills `row` (a bytearray of at least (m + 7) >> 3 bytes; bit i is row[i >> 3] >> (i & 7) & 1) with the
    data rows XORed into coded fragment n (1 = the first coded one) of a block of m rows, and returns it.
    m // 2 draws are made; a row drawn twice is set once."""
    for i in range((m + 7) >> 3):
        row[i] = 0
    pow2 = 1 if m & (m - 1) == 0 else 0
    x = 1 + 1001 * n
    for _ in range(m >> 1):
        r = m
        while r >= m:
            x = prbs23(x)
            r = x % (m + pow2)
        row[r >> 3] |= 1 << (r & 7)
    return row


def matrix_line(n, m):
    """matrix_row as the ascending list of data-row indexes."""
    row = matrix_row(n, m, bytearray((m + 7) >> 3))
    return [i for i in range(m) if row[i >> 3] >> (i & 7) & 1]
