"""TS005 multicast key derivations (McRootKey, McKEKey, McKey_encrypted, McAppSKey, McNwkSKey) against test
vectors published by two independent implementations, not against this code's own output:

- brocaar/lorawan `applayer/multicastsetup/keys_test.go` (TestKeys), commit
  11ffaf662692ddd441d1c51bd47a098d3d019454: McRootKey from a GenAppKey (1.0.x) and from an AppKey (1.1),
  McKEKey from a McRootKey, McAppSKey and McNetSKey from a McKey and McAddr;
- chirpstack/chirpstack `lrwn/src/applayer/multicastsetup/v1.rs` (mod test), commit
  3d415ca6417097110b779c700c6b84d19824fe66: the same five vectors, and `test_encrypt_mc_key`
  (McKey_encrypted from McKEKey and McKey).

The vectors are the inputs and expected outputs copied from those tests; their keys are written there as
byte arrays, here in hex. Their McAddr is DevAddr 01020304 (as written, most significant byte first), which
both libraries put into the block little-endian (04 03 02 01): McAddr 0x01020304 here.

Each step is checked on its own: the firmware (bysans.fuota.dispatch.root_key / ke_key / kek,
bysans.fuota.multicast.recover_mc_key / session_keys / group_keys) on the MicroPython unix port, 64- and
32-bit, and the host (fleet.fuota.multicast). The published vectors do not chain (each step has its own
input), so the firmware's kek() = ke_key(root_key()) and group_keys() = session_keys(recover_mc_key()) are
checked to be those compositions. No published vector gives the node's McKey recovery (aes128_encrypt(McKEKey,
McKey_encrypted)) directly: it is checked as the inverse of ChirpStack's encrypt_mc_key vector.
"""

import json
import subprocess

import pytest

from fleet.fuota import multicast as fmc
from fleet.resources import firmware_dir, micropython_path

ROM = firmware_dir().parent / "fleet" / "sim" / "rom"  # cryptolib's stand-in for the 32-bit build

_TAIL = "02030405060708090a0b0c0d0e0f10"  # bytes 2..16 of the keys in both test files
GEN_APP_KEY = bytes.fromhex("03" + _TAIL)
APP_KEY = bytes.fromhex("02" + _TAIL)
MC_ROOT_KEY = bytes.fromhex("04" + _TAIL)
MC_KEY = bytes.fromhex("01" + _TAIL)
MC_ADDR = 0x01020304

# expected outputs (brocaar/lorawan TestKeys = chirpstack v1.rs tests)
ROOT_FROM_GEN_APP_KEY = bytes.fromhex("55344e82570eaec8bf03b99962d1f445")  # LoRaWAN 1.0.x: 0x00 | pad16
ROOT_FROM_APP_KEY_11 = bytes.fromhex("264fd859583fcc670241ac071cc9f5bb")   # LoRaWAN 1.1: 0x20 | pad16
KE_KEY_FROM_ROOT = bytes.fromhex("9083bebf704257883160dbfcde33ad71")
MC_APP_S_KEY = bytes.fromhex("95cb4518ee375606735bbacbdce837fa")
MC_NWK_S_KEY = bytes.fromhex("c3f6b388bad6c000b23291ad52c11c7b")  # "McNetSKey" in both libraries

# chirpstack v1.rs test_encrypt_mc_key: McKEKey 01 * 16, McKey 02 * 16
ENC_KE_KEY = bytes([1] * 16)
ENC_MC_KEY = bytes([2] * 16)
MC_KEY_ENCRYPTED = bytes([52, 55, 214, 226, 49, 215, 2, 65, 155, 81, 180, 148, 114, 113, 182, 17])

FIRMWARE = r"""
import sys, json
try:
    import cryptolib
except ImportError:  # the 32-bit unix build has no cryptolib; an ESP32 has (the virtual board's stand-in)
    sys.path.insert(0, ROM)
    import _cryptolib
    sys.modules["cryptolib"] = _cryptolib
from binascii import hexlify, unhexlify
from bysans.fuota.dispatch import kek, ke_key, root_key
from bysans.fuota.multicast import group_keys, recover_mc_key, session_keys

h = lambda b: hexlify(b).decode()
for line in sys.stdin:
    c = json.loads(line)
    a = [unhexlify(x) for x in c["args"]]
    op = c["op"]
    if op == "root":
        out = h(root_key(a[0]))
    elif op == "ke":
        out = h(ke_key(a[0]))
    elif op == "kek":
        out = [h(kek(a[0])), h(ke_key(root_key(a[0])))]
    elif op == "mckey":
        out = h(recover_mc_key(a[0], a[1]))
    elif op == "session":
        out = [h(k) for k in session_keys(a[0], c["addr"])]
    elif op == "group":
        out = [[h(k) for k in group_keys(a[0], a[1], c["addr"])],
               [h(k) for k in session_keys(recover_mc_key(a[0], a[1]), c["addr"])]]
    print(json.dumps(out))
"""


@pytest.fixture(params=["64bit", "32bit"])
def interpreter(request):
    if request.param == "32bit":
        import mp32support

        return mp32support.require()
    return micropython_path()


def firmware(tmp_path, interpreter, steps):
    script = tmp_path / "fuota_keys_fw.py"
    script.write_text("import sys\nsys.path.insert(0, %r)\nROM = %r\n" % (str(firmware_dir()), str(ROM)) + FIRMWARE)
    p = subprocess.run([interpreter, str(script)], input="\n".join(json.dumps(s) for s in steps) + "\n",
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr + p.stdout
    return [json.loads(line) for line in p.stdout.splitlines()]


def test_firmware_derives_the_published_multicast_keys(tmp_path, interpreter):
    step = lambda op, *args, **kw: dict(op=op, args=[a.hex() for a in args], **kw)  # noqa: E731
    root, ke, (k1, k2), mck, sess, (grp, composed) = firmware(tmp_path, interpreter, [
        step("root", GEN_APP_KEY),
        step("ke", MC_ROOT_KEY),
        step("kek", GEN_APP_KEY),
        step("mckey", ENC_KE_KEY, MC_KEY_ENCRYPTED),
        step("session", MC_KEY, addr=MC_ADDR),
        step("group", ENC_KE_KEY, MC_KEY_ENCRYPTED, addr=MC_ADDR),
    ])
    assert root == ROOT_FROM_GEN_APP_KEY.hex()      # 1.0.x: the firmware's root key is the GenAppKey's
    assert ke == KE_KEY_FROM_ROOT.hex()
    assert k1 == k2                                  # what the node keeps is McKEKey of McRootKey of GenAppKey
    assert mck == ENC_MC_KEY.hex()                   # the node undoes the server's aes128_decrypt
    assert sess == [MC_APP_S_KEY.hex(), MC_NWK_S_KEY.hex()]
    assert grp == composed                           # McGroupSetupReq's path is those two steps


def test_host_derives_the_published_multicast_keys():
    assert bytes(fmc.mc_root_key(GEN_APP_KEY)) == ROOT_FROM_GEN_APP_KEY
    assert bytes(fmc.mc_root_key(APP_KEY, lorawan_11=True)) == ROOT_FROM_APP_KEY_11
    assert bytes(fmc.mc_ke_key(MC_ROOT_KEY)) == KE_KEY_FROM_ROOT
    assert fmc.encrypt_mc_key(ENC_KE_KEY, ENC_MC_KEY) == MC_KEY_ENCRYPTED
    assert tuple(bytes(k) for k in fmc.mc_session_keys(MC_KEY, MC_ADDR)) == (MC_APP_S_KEY, MC_NWK_S_KEY)
