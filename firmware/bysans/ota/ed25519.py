# Ed25519 signature verification (RFC 8032 §5.1.7) and the SHA-512 it needs (FIPS 180-4), for MicroPython.
#
# Verification only: a node never signs. It holds public keys and checks the release metadata, whose
# signed message is a 32-byte SHA-256 digest (DESIGN §5), so SHA-512 here hashes one 128-byte block.
#
# Speed: field elements are Python ints (MicroPython's mpz), reduced with `% P` after each product (faster
# in MicroPython than a shift-and-fold reduction); the curve's arithmetic is in edwards.py. [S]B - [k]A is
# one double-scalar multiplication (Straus/Shamir: one chain of 253 doublings) with width-4 NAF digits for
# both scalars; the odd multiples of B are computed at import and kept (4 affine points, about 1.5 KB of
# heap on a 64-bit port), those of -A for each signature (width 5 is ~2% faster, and needs twice the
# room of both tables). Two modular exponentiations remain: decoding A (a square root) and encoding the
# result (an inverse).
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

L = const(0x1000000000000000000000000000000014DEF9DEA2F79CD65812631A5CF5D3ED)  # 2**252 + 2774...
_BX = const(0x216936D3CD6E53FEC0A4E231FDD6DC5C692CC7609525A7B2C9562D608F25D51A)
_BY = const(0x6666666666666666666666666666666666666666666666666666666666666658)
_W = const(4)  # NAF width for both scalars: tables of 2**(_W-2) = 4 odd multiples


from .edwards import D2, P, add, decode_point, double, encode, neg, odd_multiples, uncached  # noqa: E402
from .sha512 import sha512  # noqa: E402  (modules of their own: a small heap compiles one at a time)


class BadSignature(Exception):
    pass


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
# The NAF digits of the two scalars (s < L < 2**253 and k < L: at most 254 digits each), allocated once: a
# small, fragmented heap may have 8 KB free and no 272 bytes in one piece. (verify is not re-entrant.)
_NS = bytearray(256)
_NK = bytearray(256)


def _base():
    """The odd multiples of the base point in cached form, computed once per process and kept. Each is
    made affine (Z = 1, so the cached 2*Z is the small int 2): three big ints a point instead of four, and
    edwards.add's Z1*Z2 becomes Z1*2. One inversion for them all (Montgomery's trick)."""
    global _base_table
    if _base_table is None:
        t = odd_multiples((_BX, _BY, 1, _BX * _BY % P), 1 << (_W - 2))
        p = P
        acc = [1]
        for q in t:
            acc.append(acc[-1] * q[3] % p)
        inv = pow(acc[-1], p - 2, p)  # 1 / (the product of every cached 2*Z)
        out = [None] * len(t)
        i = len(t) - 1
        while i >= 0:
            ypx, ymx, _t2d, z2 = t[i]
            zi = inv * acc[i] % p  # 1 / z2 of this point
            inv = inv * z2 % p
            x = (ypx - ymx) * zi % p  # X/Z = (Y+X - (Y-X)) / (2*Z)
            y = (ypx + ymx) * zi % p
            # x + 0 is a new int with room for its value only (a remainder keeps the room of what was
            # divided: twice as much), made here, after the temporaries, so the table kept for good sits
            # in one piece rather than strewn among them (gaps a small heap would keep as long as it runs)
            out[i] = ((y + x) % p + 0, (y - x) % p + 0, D2 * x % p * y % p + 0, 2)
            i -= 1
        _base_table = out
    return _base_table


_base()  # at import, while the heap is still in one piece: a table made later lands in whatever gaps are left


def _sb_minus_ka(s, k, a_pt):
    """[s]B - [k]A, one Straus/Shamir doubling chain over both width-_W NAFs."""
    tb = _base()
    # Subtracting [k]A is adding [k](-A): the table is made from -A = (-X, Y, Z, -T) (one table in the
    # heap, not a table and its negation).
    x, y, z, t = a_pt
    ta = odd_multiples(((-x) % P, y, z, (-t) % P), 1 << (_W - 2))
    ns = _NS
    nk = _NK
    n = _naf(s, ns)
    i = _naf(k, nk)
    for j in range(n, i):  # the shorter one's digits up to the longer's length: 0, not a previous call's
        ns[j] = 0
    for j in range(i, n):
        nk[j] = 0
    i = max(n, i) - 1
    acc = None
    while i >= 0:
        if acc is not None:
            acc = double(acc)
        ds = ns[i]
        dk = nk[i]
        if ds > 127:
            ds -= 256
        if dk > 127:
            dk -= 256
        if ds:
            q = tb[ds >> 1] if ds > 0 else neg(tb[(-ds) >> 1])
            acc = add(acc, q) if acc is not None else uncached(q)
        if dk:
            q = ta[dk >> 1] if dk > 0 else neg(ta[(-dk) >> 1])
            acc = add(acc, q) if acc is not None else uncached(q)
        i -= 1
    if acc is None:
        return (0, 1, 1, 0)
    return acc


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
    a_pt = decode_point(public_key)
    if a_pt is None:
        return False
    r_bytes = sig[:32]
    # R must decode as a canonical point too; comparing encodings below covers that (an encoding is
    # always canonical), so R is not decoded here.
    k = int.from_bytes(sha512(r_bytes, public_key, message), "little") % L
    return encode(_sb_minus_ka(s, k, a_pt)) == r_bytes


def check(public_key, message, signature):
    """Like verify(), but raises BadSignature instead of returning False."""
    if not verify(public_key, message, signature):
        raise BadSignature()
