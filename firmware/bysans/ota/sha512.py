# SHA-512 (FIPS 180-4) for MicroPython, whose hashlib has no SHA-512; Ed25519 needs it (ed25519.py).
# 64-bit words are Python ints (mpz past the small-int range). The round constants and the message schedule
# live in two arrays of 64-bit words, allocated once: as lists of ints they would keep up to 160 big ints
# (each a heap object of its own) strewn over the heap, which a small heap cannot afford.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

_M64 = const(0xFFFFFFFFFFFFFFFF)


def _roots(n, k):
    """The first 64 bits of the fractional parts of the k-th roots of the first n primes, as FIPS 180-4
    defines SHA-512's constants (§4.2.3: k = 3, n = 80; §5.3.5: k = 2, n = 8). Computed at import rather
    than written out: a table of them would stay in the heap twice (the literal and the array)."""
    out = array("Q", bytes(8 * n))
    p = 1
    for i in range(n):
        p += 1
        while any(p % q == 0 for q in range(2, p) if q * q <= p):
            p += 1
        a = p << (64 * k)  # the k-th root of a is the root of p, times 2**64
        x = int(p ** (1 / k) * 2.0 ** 64) + 1  # a float guess; Newton's integer steps do the rest
        x = ((k - 1) * x + a // x ** (k - 1)) // k  # one step lands at or above the integer root
        while True:
            y = ((k - 1) * x + a // x ** (k - 1)) // k
            if y >= x:
                break
            x = y
        out[i] = x & _M64
    return out


_K512 = _roots(80, 3)
_H512 = tuple(_roots(8, 2))
del _roots  # its code is needed no more


_W512 = array("Q", bytes(640))  # the message schedule


def _compress(h, block):
    m64 = _M64
    w = _W512
    for t in range(16):
        w[t] = int.from_bytes(block[8 * t:8 * t + 8], "big")
    for t in range(16, 80):
        x = w[t - 15]
        s0 = ((x >> 1) | (x << 63)) ^ ((x >> 8) | (x << 56)) ^ (x >> 7)
        x = w[t - 2]
        s1 = ((x >> 19) | (x << 45)) ^ ((x >> 61) | (x << 3)) ^ (x >> 6)
        w[t] = (w[t - 16] + (s0 & m64) + w[t - 7] + (s1 & m64)) & m64
    a, b, c, d, e, f, g, hh = h
    k = _K512
    for t in range(80):
        s1 = (((e >> 14) | (e << 50)) ^ ((e >> 18) | (e << 46)) ^ ((e >> 41) | (e << 23))) & m64
        t1 = hh + s1 + ((e & f) ^ (~e & g & m64)) + k[t] + w[t]
        s0 = (((a >> 28) | (a << 36)) ^ ((a >> 34) | (a << 30)) ^ ((a >> 39) | (a << 25))) & m64
        t2 = s0 + ((a & b) ^ (a & c) ^ (b & c))
        hh = g
        g = f
        f = e
        e = (d + t1) & m64
        d = c
        c = b
        b = a
        a = (t1 + t2) & m64
    return [(x + y) & m64 for x, y in zip(h, (a, b, c, d, e, f, g, hh))]


_BLOCK = bytearray(128)  # the partial block being filled, allocated once


def sha512(*parts):
    """SHA-512 digest (64 bytes) of the concatenation of the bytes-like `parts`.

    The parts are hashed in place, never joined: Ed25519 hashes R || A || M, and joining a long message
    would need one more block of its size from a small, fragmented heap.
    """
    h = list(_H512)
    buf = _BLOCK
    fill = 0
    n = 0
    for data in parts:
        mv = memoryview(data)
        size = len(mv)
        n += size
        i = 0
        if fill:
            take = min(128 - fill, size)
            buf[fill:fill + take] = mv[:take]
            fill += take
            i = take
            if fill < 128:
                continue
            h = _compress(h, buf)
            fill = 0
        while size - i >= 128:
            h = _compress(h, mv[i:i + 128])
            i += 128
        if i < size:
            buf[:size - i] = mv[i:]
            fill = size - i
    buf[fill] = 0x80
    fill += 1
    if fill > 112:
        for j in range(fill, 128):
            buf[j] = 0
        h = _compress(h, buf)
        fill = 0
    for j in range(fill, 112):
        buf[j] = 0
    buf[112:128] = (n * 8).to_bytes(16, "big")
    h = _compress(h, buf)
    out = bytearray()
    for x in h:
        out.extend(x.to_bytes(8, "big"))
    return bytes(out)
