"""The virtual board's stand-in for cryptolib (fleet/sim/rom/_cryptolib.py, for the 32-bit MicroPython that
has none) against an independent AES: CPython's `cryptography`, on random keys and blocks, encrypt and
decrypt, AES-128 and AES-256; into a caller's buffer it allocates nothing; what it costs in heap."""

import json
import os
import subprocess

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fleet.resources import micropython_path, rom_dir

SCRIPT = r"""
import sys, json, binascii, gc, micropython
sys.path.append(%r)
gc.collect(); before = gc.mem_alloc()
import _cryptolib as C
gc.collect(); cost = gc.mem_alloc() - before
out = []
for key, data in json.loads(sys.stdin.readline()):
    a = C.aes(binascii.unhexlify(key), 1)
    ct = a.encrypt(binascii.unhexlify(data))
    out.append([binascii.hexlify(ct).decode(), binascii.hexlify(a.decrypt(ct)).decode()])
a = C.aes(bytes(16), 1)
buf = bytearray(16)
micropython.heap_lock()
try:
    a.encrypt(buf, buf)
    a.decrypt(buf, buf)
    locked = "ok"
except MemoryError:
    locked = "allocated"
micropython.heap_unlock()
print(json.dumps({"out": out, "cost": cost, "locked": locked}))
"""


def _cases():
    cases = []
    for i in range(40):
        key = os.urandom(16 if i % 2 else 32)
        cases.append([key.hex(), os.urandom(16 * (1 + i % 4)).hex()])
    return cases


def _run(interpreter):
    cases = _cases()
    p = subprocess.run([interpreter, "-X", "heapsize=256K", "-c", SCRIPT % str(rom_dir())],
                       input=json.dumps(cases) + "\n", capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr + p.stdout
    got = json.loads(p.stdout.strip().splitlines()[-1])
    for (key, data), (ct, back) in zip(cases, got["out"]):
        enc = Cipher(algorithms.AES(bytes.fromhex(key)), modes.ECB()).encryptor()
        assert ct == (enc.update(bytes.fromhex(data)) + enc.finalize()).hex()
        assert back == data
    assert got["locked"] == "ok"
    return got["cost"]


def test_standin_matches_cpython_aes_on_the_64bit_port():
    _run(micropython_path())


def test_standin_on_the_32bit_port_and_its_heap_cost(mp32):
    cost = _run(mp32)
    assert 0 < cost < 3072, cost  # docs/boards.md: "about 2.4 KB", a cost an ESP32's built-in does not have
    print(f"\ncryptolib stand-in: {cost} bytes of heap on the 32-bit port")


def test_the_64bit_port_keeps_its_own_cryptolib():
    """vboot.py loads the stand-in only where `import cryptolib` fails: the .venv unix port has it built in."""
    out = subprocess.run([micropython_path(), "-c", "import cryptolib; print(hasattr(cryptolib, '__file__'))"],
                         capture_output=True, text=True, timeout=30).stdout
    assert out.strip() == "False"
