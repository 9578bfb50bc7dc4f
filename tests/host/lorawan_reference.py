"""An independent reading of the LoRaWAN 1.0.x crypto (§4.3.3 FRMPayload, §4.4 MIC) on `cryptography`'s AES
and CMAC, shared by the tests that check the host library and the firmware against it."""

from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


def ecb(key, data, decrypt=False):
    c = Cipher(algorithms.AES(key), modes.ECB())
    x = c.decryptor() if decrypt else c.encryptor()
    return x.update(data) + x.finalize()


def aes_cmac(key, data):
    c = cmac.CMAC(algorithms.AES(key))
    c.update(data)
    return c.finalize()


def frm_crypt(key, addr, fcnt, direction, data):
    """FRMPayload encryption (= decryption): data XOR AES(key, A_i), i from 1."""
    out = bytearray()
    for i in range(0, len(data), 16):
        a = bytes([1, 0, 0, 0, 0, direction]) + addr.to_bytes(4, "little") + fcnt.to_bytes(4, "little") \
            + bytes([0, i // 16 + 1])
        out += bytes(p ^ k for p, k in zip(data[i:i + 16], ecb(key, a)))
    return bytes(out)
