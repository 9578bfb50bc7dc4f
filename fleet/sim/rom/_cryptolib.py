# A stand-in for MicroPython's built-in `cryptolib` (AES, ECB mode only), for interpreters built without it:
# the 32-bit unix port from ../shared/tools/build-micropython32 has no mbedtls, so no cryptolib, while an
# ESP32's MicroPython has it built in (mbedtls). vboot.py and the firmware test runner put it in
# sys.modules["cryptolib"] only when the interpreter lacks the real one.
#
# Unlike the built-in, its code and tables sit in the heap (about 2.4 KB on a 32-bit build, measured by
# tests/host/test_cryptolib_standin.py), so a board using it is a little less kind than an ESP32, never
# kinder. encrypt/decrypt into a caller's buffer allocate nothing, as the built-in's do.
import micropython

MODE_ECB = 1


def _tables():
    sbox = bytearray(256)
    inv = bytearray(256)
    p = q = 1
    while True:  # p walks GF(2^8) by multiplying with 3, q by dividing by 3 (FIPS 197 section 5.1.1)
        p = p ^ ((p << 1) & 0xFF) ^ (0x1B if p & 0x80 else 0)
        q ^= q << 1
        q ^= q << 2
        q ^= q << 4
        q &= 0xFF
        if q & 0x80:
            q ^= 0x09
        x = q ^ ((q << 1) | (q >> 7)) ^ ((q << 2) | (q >> 6)) ^ ((q << 3) | (q >> 5)) ^ ((q << 4) | (q >> 4))
        x = (x ^ 0x63) & 0xFF
        sbox[p] = x
        inv[x] = p
        if p == 1:
            break
    sbox[0] = 0x63
    inv[0x63] = 0
    return sbox, inv


_SBOX, _INV = _tables()
del _tables


@micropython.viper
def _encrypt(rk, nr: int, src, dst, st):
    sb = ptr8(_SBOX)
    k = ptr8(rk)
    a = ptr8(st)
    i = ptr8(src)
    o = ptr8(dst)
    n = 0
    while n < 16:
        a[n] = i[n] ^ k[n]
        n += 1
    r = 1
    while r <= nr:
        c = 0
        while c < 16:  # SubBytes and ShiftRows, into o (src is already in a, so o may be src)
            o[c] = sb[a[c]]
            o[c + 1] = sb[a[(c + 5) & 15]]
            o[c + 2] = sb[a[(c + 10) & 15]]
            o[c + 3] = sb[a[(c + 15) & 15]]
            c += 4
        c = 0
        while c < 16:
            b0 = o[c]
            b1 = o[c + 1]
            b2 = o[c + 2]
            b3 = o[c + 3]
            if r < nr:  # MixColumns
                t = b0 ^ b1 ^ b2 ^ b3
                u = b0 ^ b1
                a[c] = b0 ^ t ^ (((u << 1) ^ ((u >> 7) * 0x1B)) & 0xFF)
                u = b1 ^ b2
                a[c + 1] = b1 ^ t ^ (((u << 1) ^ ((u >> 7) * 0x1B)) & 0xFF)
                u = b2 ^ b3
                a[c + 2] = b2 ^ t ^ (((u << 1) ^ ((u >> 7) * 0x1B)) & 0xFF)
                u = b3 ^ b0
                a[c + 3] = b3 ^ t ^ (((u << 1) ^ ((u >> 7) * 0x1B)) & 0xFF)
            else:
                a[c] = b0
                a[c + 1] = b1
                a[c + 2] = b2
                a[c + 3] = b3
            c += 4
        n = 0
        while n < 16:
            a[n] ^= k[16 * r + n]
            n += 1
        r += 1
    n = 0
    while n < 16:
        o[n] = a[n]
        n += 1


@micropython.viper
def _decrypt(rk, nr: int, src, dst, st):
    sb = ptr8(_INV)
    k = ptr8(rk)
    a = ptr8(st)
    i = ptr8(src)
    o = ptr8(dst)
    n = 0
    while n < 16:
        a[n] = i[n] ^ k[16 * nr + n]
        n += 1
    r = nr - 1
    while r >= 0:
        c = 0
        while c < 16:  # InvShiftRows and InvSubBytes, into o
            o[c] = sb[a[c]]
            o[c + 1] = sb[a[(c + 13) & 15]]
            o[c + 2] = sb[a[(c + 10) & 15]]
            o[c + 3] = sb[a[(c + 7) & 15]]
            c += 4
        n = 0
        while n < 16:
            a[n] = o[n] ^ k[16 * r + n]
            n += 1
        if r > 0:
            c = 0
            while c < 16:  # InvMixColumns: a pre-step, then MixColumns (FIPS 197 section 5.3.3 factored)
                u = a[c] ^ a[c + 2]
                u = ((u << 1) ^ ((u >> 7) * 0x1B)) & 0xFF
                u = ((u << 1) ^ ((u >> 7) * 0x1B)) & 0xFF
                v = a[c + 1] ^ a[c + 3]
                v = ((v << 1) ^ ((v >> 7) * 0x1B)) & 0xFF
                v = ((v << 1) ^ ((v >> 7) * 0x1B)) & 0xFF
                b0 = a[c] ^ u
                b1 = a[c + 1] ^ v
                b2 = a[c + 2] ^ u
                b3 = a[c + 3] ^ v
                t = b0 ^ b1 ^ b2 ^ b3
                w = b0 ^ b1
                a[c] = b0 ^ t ^ (((w << 1) ^ ((w >> 7) * 0x1B)) & 0xFF)
                w = b1 ^ b2
                a[c + 1] = b1 ^ t ^ (((w << 1) ^ ((w >> 7) * 0x1B)) & 0xFF)
                w = b2 ^ b3
                a[c + 2] = b2 ^ t ^ (((w << 1) ^ ((w >> 7) * 0x1B)) & 0xFF)
                w = b3 ^ b0
                a[c + 3] = b3 ^ t ^ (((w << 1) ^ ((w >> 7) * 0x1B)) & 0xFF)
                c += 4
        r -= 1
    n = 0
    while n < 16:
        o[n] = a[n]
        n += 1


def _expand(key):
    nk = len(key) // 4
    nr = nk + 6
    w = bytearray(16 * (nr + 1))
    w[:len(key)] = key
    rcon = 1
    for i in range(nk, 4 * (nr + 1)):
        t = bytearray(w[4 * i - 4:4 * i])
        if i % nk == 0:
            t = bytearray((_SBOX[t[1]] ^ rcon, _SBOX[t[2]], _SBOX[t[3]], _SBOX[t[0]]))
            rcon = ((rcon << 1) ^ (0x1B if rcon & 0x80 else 0)) & 0xFF
        elif nk > 6 and i % nk == 4:
            t = bytearray(_SBOX[b] for b in t)
        for j in range(4):
            w[4 * i + j] = w[4 * (i - nk) + j] ^ t[j]
    return w, nr


class aes:  # noqa: N801 - the built-in's name
    def __init__(self, key, mode, iv=None):
        if mode != MODE_ECB:
            raise ValueError("mode")  # only ECB: what the firmware uses (lorawan/crypto.py)
        if len(key) not in (16, 32):
            raise ValueError("key")
        self._rk, self._nr = _expand(key)
        self._st = bytearray(16)

    def _run(self, fn, src, dst):
        if len(src) % 16:
            raise ValueError("blksize")
        out = dst if dst is not None else bytearray(len(src))
        if len(out) < len(src):
            raise ValueError("output too small")
        src = memoryview(src)
        out_mv = memoryview(out)
        for off in range(0, len(src), 16):
            fn(self._rk, self._nr, src[off:off + 16] if off else src, out_mv[off:off + 16] if off else out_mv,
               self._st)
        return None if dst is not None else bytes(out)

    def encrypt(self, src, dst=None):
        if len(src) == 16 and dst is not None:  # the hot path: allocates nothing
            _encrypt(self._rk, self._nr, src, dst, self._st)
            return None
        return self._run(_encrypt, src, dst)

    def decrypt(self, src, dst=None):
        if len(src) == 16 and dst is not None:
            _decrypt(self._rk, self._nr, src, dst, self._st)
            return None
        return self._run(_decrypt, src, dst)
