# The curve of Ed25519 (RFC 8032 §5.1): a twisted Edwards curve over GF(2**255 - 19), its points in extended
# coordinates (X, Y, Z, T): x = X/Z, y = Y/Z, x*y = T/Z (§5.1.4), and the group law; ed25519.py verifies
# signatures with it. A module of its own: a small heap compiles one at a time.
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

P = const(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFED)  # 2**255 - 19
D2 = const(0x2406D9DC56DFFCE7198E80F2EEF3D13000E0149A8283B156EBD69B9426B2F159)  # 2*d
_D = const(0x52036CEE2B6FFE738CC740797779E89800700A4D4141D8AB75EB4DCA135978A3)   # -121665/121666
_SQRTM1 = const(0x2B8324804FC1DF0B2B4D00993DFBD7A72F431806AD2FE478C4EE1B274A0EA0B0)  # sqrt(-1)
_M255 = const(0x7FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF)


def decode_point(s):
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
    """(Y+X, Y-X, 2d*T, 2*Z): the form an addend takes in add()."""
    x, y, z, t = pt
    p = P
    return ((y + x) % p, (y - x) % p, D2 * t % p, 2 * z % p)


def add(pt, q):
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


def double(pt):
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


def odd_multiples(pt, n):
    """[P, 3P, 5P, ..., (2n - 1)P] in cached form."""
    two = _cached(double(pt))
    out = [_cached(pt)]
    cur = pt
    for _ in range(n - 1):
        cur = add(cur, two)
        out.append(_cached(cur))
    return out


def neg(q):
    """The cached form of -Q from that of Q."""
    return (q[1], q[0], (-q[2]) % P, q[3])


def uncached(q):
    """Extended coordinates back from a cached point (only for the first addend of a chain)."""
    ypx, ymx, t2d, z2 = q
    p = P
    # X = (ypx - ymx)/2, Y = (ypx + ymx)/2, Z = z2/2; scaling all by 2 keeps the point: (X', Y', Z') = 2*(...)
    x = (ypx - ymx) % p
    y = (ypx + ymx) % p
    z = z2
    # T/Z = x*y/z^2 -> T' = X'*Y'/Z'
    return (x * z % p, y * z % p, z * z % p, x * y % p)


def encode(pt):
    x, y, z, _ = pt
    p = P
    zi = pow(z, p - 2, p)
    x = x * zi % p
    y = y * zi % p
    return (y | ((x & 1) << 255)).to_bytes(32, "little")
