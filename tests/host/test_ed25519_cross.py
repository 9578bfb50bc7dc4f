"""The device's Ed25519 verifier (MicroPython) against `cryptography` (OpenSSL) on random keys and messages."""

import ast
import hashlib
import json
import os
import random
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from release_support import run_mp

MP_TEST = Path(__file__).resolve().parents[1] / "firmware" / "mp_test_ed25519.py"

CHECK = """
import binascii
from bysans.ota import ed25519
out = []
for line in open(sys.argv[1]):
    pk, msg, sig = [binascii.unhexlify(x) for x in line.split(",")]
    out.append("1" if ed25519.verify(pk, msg, sig) else "0")
print("".join(out))
"""


def _raw(pub):
    return pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _openssl_accepts(pk: bytes, msg: bytes, sig: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, msg)
        return True
    except (InvalidSignature, ValueError):
        return False


def test_random_keys_and_messages_agree_with_cryptography(tmp_path):
    rng = random.Random(8032)
    cases = []
    for i in range(24):
        key = Ed25519PrivateKey.generate()
        pk = _raw(key.public_key())
        # the device's case (a SHA-256 digest) and random lengths across SHA-512's block edges
        msg = hashlib.sha256(os.urandom(40)).digest() if i % 3 == 0 else os.urandom(rng.choice([0, 1, 63, 111, 112, 200]))
        sig = key.sign(msg)
        cases.append((pk, msg, sig))
        bad_sig = bytearray(sig)
        bad_sig[rng.randrange(64)] ^= 1 << rng.randrange(8)
        cases.append((pk, msg, bytes(bad_sig)))
        bad_msg = bytearray(msg or b"\x00")
        bad_msg[rng.randrange(len(bad_msg))] ^= 1 << rng.randrange(8)
        cases.append((pk, bytes(bad_msg), sig))
        other = _raw(Ed25519PrivateKey.generate().public_key())
        cases.append((other, msg, sig))
    f = tmp_path / "vectors.txt"
    f.write_text("\n".join(",".join(x.hex() for x in c) for c in cases) + "\n")
    got = run_mp(CHECK, str(f)).strip()
    want = "".join("1" if _openssl_accepts(*c) else "0" for c in cases)
    assert want.count("1") == 24  # every untouched signature is valid, every touched one is not
    assert got == want


def test_rfc8032_vectors_in_the_firmware_test_match_cryptography():
    """The vectors copied into mp_test_ed25519.py are RFC 8032's: OpenSSL derives the same key and signature."""
    tree = ast.parse(MP_TEST.read_text())
    vectors = next(ast.literal_eval(n.value) for n in tree.body
                   if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "RFC8032")
    assert len(vectors) == 5
    for sk, pk, msg, sig in vectors:
        key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(sk))
        assert _raw(key.public_key()).hex() == pk
        assert key.sign(bytes.fromhex(msg)).hex() == sig


