# Ed25519 signature verification (RFC 8032 §5.1.7) and the SHA-512 it needs (FIPS 180-4), for MicroPython.
#
# Verification only: a node never signs. It holds public keys and checks the release metadata, whose
# signed message is a 32-byte SHA-256 digest (DESIGN §5), so SHA-512 here hashes one 128-byte block.
#
# Speed: field elements are Python ints (MicroPython's mpz), reduced with `% P` after each product (faster
# in MicroPython than a shift-and-fold reduction). [S]B - [k]A is one double-scalar multiplication
# (Straus/Shamir: one chain of 253 doublings) with width-5 NAF digits for both scalars; the odd multiples
# of B are computed once per process and kept (8 points, about 2 KB of heap). Two modular exponentiations
# remain: decoding A (a square root) and encoding the result (an inverse).
#
# The check is the cofactorless one, as in OpenSSL (which `cryptography` uses): encode([S]B - [k]A) == R,
# S < L, A a valid, canonically encoded point. Not constant time, and it need not be: nothing is secret.
#
# Runs under CPython too (the host tests use that only for debugging; the device code path is MicroPython).
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

P = const(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED)  # 2**255 - 19
L = const(0x1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED)  # 2**252 + 2774...
_D = const(0x52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3)   # -121665/121666
_D2 = const(0x2406D9DC56DFFCE7198E80F2EEF3D13000E0149A8283B156EBD69B9426B2F159)  # 2*d
_SQRTM1 = const(0x2B8324804FC1DF0B2B4D00993DFBD7A72F431806AD2FE478C4EE1B274A0EA0B0)  # sqrt(-1)
_BX = const(0x216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A)
_BY = const(0x6666666666666666666666666666666666666666666666666666666666666658)
_W = const(5)  # NAF width for both scalars: tables of 2**(_W-2) = 8 odd multiples
_M255 = const(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF)


from .sha512 import sha512  # noqa: E402  (a module of its own: a small heap compiles one at a time)


class BadSignature(Exception):
    pass


# ---- the curve: extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, x*y = T/Z (RFC 8032 §5.1.4) ----

def _decode_point(s):
    """A point from its 32-byte encoding (RFC 8032 §5.1.3), as extended coordinates; None if invalid."""
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= _M255
    if y >= P:
        return None
    p = P
    yy = y * y % p
    u = yy - 1
    v = (_D * yy + 1) % p
    v3 = v * v % p * v % p
    x = u * v3 % p * pow(u * v3 % p * v3 % p * v % p, (p - 5) >> 3, p) % p
    vxx = v * x % p * x % p
    if vxx != u % p:
        if vxx != (-u) % p:
            return None
        x = x * _SQRTM1 % p
    if x == 0 and sign:
        return None
    if (x & 1) != sign:
        x = p - x
    return (x, y, 1, x * y % p)


def _cached(pt):
    """(Y+X, Y-X, 2d*T, 2*Z): the form an addend takes in _add."""
    x, y, z, t = pt
    p = P
    return ((y + x) % p, (y - x) % p, _D2 * t % p, 2 * z % p)


def _add(pt, q):
    x1, y1, z1, t1 = pt
    ypx, ymx, t2d, z2 = q
    p = P
    a = (y1 - x1) * ymx % p
    b = (y1 + x1) * ypx % p
    c = t1 * t2d % p
    d = z1 * z2 % p
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _double(pt):
    x1, y1, z1, _ = pt
    p = P
    a = x1 * x1 % p
    b = y1 * y1 % p
    c = 2 * z1 * z1 % p
    h = a + b
    s = x1 + y1
    e = h - s * s % p
    g = a - b
    f = c + g
    return (e * f % p, g * h % p, f * g % p, e * h % p)


def _odd_multiples(pt):
    """[P, 3P, 5P, ..., (2**(_W-1) - 1)P] in cached form."""
    two = _cached(_double(pt))
    out = [_cached(pt)]
    cur = pt
    for _ in range((1 << (_W - 2)) - 1):
        cur = _add(cur, two)
        out.append(_cached(cur))
    return out


def _naf(k, out):
    """Width-_W NAF digits of k into bytearray `out`, least significant first, as signed bytes (each 0
    or odd, |d| < 2**(_W-1)); returns how many digits. A fixed buffer: no list to grow on a small heap."""
    full = 1 << _W
    half = full >> 1
    mask = full - 1
    n = 0
    while k:
        if k & 1:
            z = k & mask
            if z >= half:
                z -= full
            k -= z
            out[n] = z & 0xFF
        else:
            out[n] = 0
        n += 1
        k >>= 1
    return n


_base_table = None


def _base():
    global _base_table
    if _base_table is None:
        _base_table = _odd_multiples((_BX, _BY, 1, _BX * _BY % P))
    return _base_table


def _neg(q):
    """The cached form of -Q from that of Q."""
    return (q[1], q[0], (-q[2]) % P, q[3])


def _sb_minus_ka(s, k, a_pt):
    """[s]B - [k]A, one Straus/Shamir doubling chain over both width-_W NAFs."""
    tb = _base()
    # Subtracting [k]A is adding [k](-A): negate A's table once.
    ta = [_neg(q) for q in _odd_multiples(a_pt)]
    ns = bytearray(256)  # s < L < 2**253 and k < L: at most 254 digits
    nk = bytearray(256)
    i = max(_naf(s, ns), _naf(k, nk)) - 1
    acc = None
    while i >= 0:
        if acc is not None:
            acc = _double(acc)
        ds = ns[i]
        dk = nk[i]
        if ds > 127:
            ds -= 256
        if dk > 127:
            dk -= 256
        if ds:
            q = tb[ds >> 1] if ds > 0 else _neg(tb[(-ds) >> 1])
            acc = _add(acc, q) if acc is not None else _uncached(q)
        if dk:
            q = ta[dk >> 1] if dk > 0 else _neg(ta[(-dk) >> 1])
            acc = _add(acc, q) if acc is not None else _uncached(q)
        i -= 1
    if acc is None:
        return (0, 1, 1, 0)
    return acc


def _uncached(q):
    """Extended coordinates back from a cached point (only for the first addend of a chain)."""
    ypx, ymx, t2d, z2 = q
    p = P
    # X = (ypx - ymx)/2, Y = (ypx + ymx)/2, Z = z2/2; scaling all by 2 keeps the point: (X', Y', Z') = 2*(...)
    x = (ypx - ymx) % p
    y = (ypx + ymx) % p
    z = z2
    # T/Z = x*y/z^2 -> T' = X'*Y'/Z'
    return (x * z % p, y * z % p, z * z % p, x * y % p)


def _encode(pt):
    x, y, z, _ = pt
    p = P
    zi = pow(z, p - 2, p)
    x = x * zi % p
    y = y * zi % p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def verify(public_key, message, signature):
    """True if `signature` (64 bytes) is a valid Ed25519 signature of `message` by `public_key` (32 bytes).

    Never raises for bad input: a wrong length, a non-canonical S or an invalid point is just False.
    """
    if len(public_key) != 32 or len(signature) != 64:
        return False
    sig = bytes(signature)
    s = int.from_bytes(sig[32:], "little")
    if s >= L:
        return False
    a_pt = _decode_point(public_key)
    if a_pt is None:
        return False
    r_bytes = sig[:32]
    # R must decode as a canonical point too; comparing encodings below covers that (an encoding is
    # always canonical), so R is not decoded here.
    k = int.from_bytes(sha512(r_bytes, public_key, message), "little") % L
    return _encode(_sb_minus_ka(s, k, a_pt)) == r_bytes


def check(public_key, message, signature):
    """Like verify(), but raises BadSignature instead of returning False."""
    if not verify(public_key, message, signature):
        raise BadSignature()
