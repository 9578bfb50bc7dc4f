# The FUOTA update payload (docs/formats/fuota.md, "Update payload"): what a fragmentation session carries
# to a LoRaWAN-only node, declared once. The device's installer (bysans/fuota/install.py) imports it; the
# host's builder (fleet/fuota/payload.py) executes this file by path (fleet/firmware_data.py).
#
# The payload adds no trust of its own: the manifest in it is the release's signed manifest (or a manifest
# delta that rebuilds it, bysans/ota/delta.py), verified by the OTA client's code like a downloaded one, and
# each object is a file of that manifest, checked against its length and SHA-256 as it is inflated. The
# CRC-32 at the end catches damage in transit (a wrong fragment) before anything is read.
#
# Layout, little-endian:
#   0   4  magic b"BFP" + format byte 1
#   4   1  manifest kind: 0 the signed manifest file (two lines), 1 a manifest delta (format "BMD" 1)
#          against the body of the release the device runs
#   5   1  reserved, 0
#   6   2  u16 number of objects
#   8   4  u32 length of the manifest part, M
#  12   M  the manifest part
#   ..     each object: SHA-256 of the file (32 bytes, raw) | u32 length C | C bytes: the file as a zlib
#          stream with a window of at most 1 KiB (the update repository's objects/<sha256>.z, the same bytes)
#   ..  4  u32 CRC-32 (binascii.crc32 / zlib.crc32) of every byte before it
import struct

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

MAGIC = b"BFP\x01"
HEADER = "<4sBBHI"
HEADER_SIZE = const(12)
OBJECT = "<32sI"
OBJECT_SIZE = const(36)
CRC_SIZE = const(4)
KIND_SIGNED = const(0)
KIND_DELTA = const(1)
MAX_OBJECTS = const(1024)


def pack_header(kind, n_objects, manifest_len):
    return struct.pack(HEADER, MAGIC, kind, 0, n_objects, manifest_len)


def unpack_header(b):
    """(kind, number of objects, manifest length) of the first HEADER_SIZE bytes; ValueError with the
    reason when they are not a payload header of this format."""
    magic, kind, rfu, n, mlen = struct.unpack(HEADER, b)
    if magic != MAGIC:
        raise ValueError("not a FUOTA update payload of format 1")
    if kind not in (KIND_SIGNED, KIND_DELTA) or rfu or n > MAX_OBJECTS:
        raise ValueError("unknown payload header fields")
    return kind, n, mlen


def pack_object(sha256_digest, data):
    return struct.pack(OBJECT, sha256_digest, len(data)) + data


def unpack_object(b):
    """(SHA-256 digest, compressed length) of an object's first OBJECT_SIZE bytes."""
    return struct.unpack(OBJECT, b)
