# LoRaWAN 1.0.x cryptography on top of cryptolib.aes in ECB mode (mode 1): AES-CMAC (RFC 4493),
# FRMPayload encryption, data-frame and join MICs, session-key derivation, join-accept decryption.
#
# Hot-path functions work in caller-owned buffers and allocate nothing once objects are built; the
# AES objects hold key schedules, so nothing here keeps a key in a printable attribute.
import cryptolib
import micropython
from micropython import const

_ECB = const(1)
BLOCK = const(16)


@micropython.viper
def xor_into(dst, doff: int, src, soff: int, n: int):
    # dst[doff:doff+n] ^= src[soff:soff+n]
    d = ptr8(dst)
    s = ptr8(src)
    i = 0
    while i < n:
        d[doff + i] ^= s[soff + i]
        i += 1


@micropython.viper
def _dbl(src, dst):
    # dst = src << 1 in GF(2^128) (RFC 4493 subkey step); src and dst are 16-byte buffers
    s = ptr8(src)
    d = ptr8(dst)
    carry = 0
    i = 15
    while i >= 0:
        v = s[i]
        d[i] = ((v << 1) | carry) & 0xFF
        carry = v >> 7
        i -= 1
    if carry:
        d[15] ^= 0x87


@micropython.viper
def ct_equal(a, aoff: int, b, boff: int, n: int) -> bool:
    # constant-time comparison of a[aoff:aoff+n] and b[boff:boff+n]
    pa = ptr8(a)
    pb = ptr8(b)
    acc = 0
    i = 0
    while i < n:
        acc |= pa[aoff + i] ^ pb[boff + i]
        i += 1
    return acc == 0


def _check_key(key):
    if len(key) != 16:
        from .errors import KeyError_

        raise KeyError_("a LoRaWAN key is 16 bytes")


class Cmac:
    # AES-CMAC with one key. mac_into() allocates nothing.
    __slots__ = ("_aes", "_k1", "_k2", "_x", "_xm")

    def __init__(self, key):
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)
        self._k1 = bytearray(16)
        self._k2 = bytearray(16)
        self._x = bytearray(16)
        self._xm = memoryview(self._x)
        self._aes.encrypt(self._x, self._x)  # L = AES(K, 0^128)
        _dbl(self._x, self._k1)
        _dbl(self._k1, self._k2)

    def __repr__(self):
        return "<Cmac>"

    def mac_into(self, data, n, out, ooff=0, outlen=16):
        # CMAC of data[0:n] (data: bytes, bytearray or memoryview); writes the first outlen bytes of the
        # tag to out[ooff:]
        x = self._x
        xm = self._xm
        aes = self._aes
        for i in range(16):
            x[i] = 0
        nblocks = (n + 15) >> 4
        if nblocks == 0:
            nblocks = 1
            complete = False
        else:
            complete = (n & 15) == 0
        off = 0
        for _ in range(nblocks - 1):
            xor_into(x, 0, data, off, 16)
            aes.encrypt(xm, xm)
            off += 16
        rest = n - off
        xor_into(x, 0, data, off, rest)
        if complete:
            xor_into(x, 0, self._k1, 0, 16)
        else:
            x[rest] ^= 0x80
            xor_into(x, 0, self._k2, 0, 16)
        aes.encrypt(xm, xm)
        for i in range(outlen):
            out[ooff + i] = x[i]

    def mac(self, data):
        out = bytearray(16)
        self.mac_into(data, len(data), out)
        return bytes(out)


class Ecb:
    # One key's AES block encryption, into a caller buffer.
    __slots__ = ("_aes",)

    def __init__(self, key):
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)

    def __repr__(self):
        return "<Ecb>"

    def encrypt(self, src, dst):
        self._aes.encrypt(src, dst)


class FrameCipher:
    # FRMPayload encryption (LoRaWAN 1.0.x §4.3.3): keystream blocks A_i = 01 | 0000 | Dir | DevAddr |
    # FCnt | 00 | i, S_i = AES(key, A_i), payload ^= S. Encryption and decryption are the same.
    __slots__ = ("_aes", "_a", "_s", "_sm")

    def __init__(self, key):
        _check_key(key)
        self._aes = cryptolib.aes(key, _ECB)
        self._a = bytearray(16)
        self._s = bytearray(16)
        self._sm = memoryview(self._s)

    def __repr__(self):
        return "<FrameCipher>"

    def crypt(self, buf, off, n, dev_addr, fcnt, downlink):
        # in place: buf[off:off+n]; dev_addr: an int or its 4 bytes (_put_addr); fcnt the full 32-bit counter
        a = self._a
        a[0] = 0x01
        a[1] = a[2] = a[3] = a[4] = 0
        a[5] = 1 if downlink else 0
        _put_addr(a, dev_addr)
        a[10] = fcnt & 0xFF
        a[11] = (fcnt >> 8) & 0xFF
        a[12] = (fcnt >> 16) & 0xFF
        a[13] = (fcnt >> 24) & 0xFF
        a[14] = 0
        i = 1
        done = 0
        while done < n:
            a[15] = i
            self._aes.encrypt(a, self._sm)
            k = n - done
            if k > 16:
                k = 16
            xor_into(buf, off + done, self._s, 0, k)
            done += k
            i += 1


def addr_bytes(dev_addr):
    # a DevAddr's 4 bytes, little-endian, as it travels
    return bytes((dev_addr & 0xFF, (dev_addr >> 8) & 0xFF, (dev_addr >> 16) & 0xFF, (dev_addr >> 24) & 0xFF))


def _put_addr(blk, dev_addr):
    # blk[6:10] = the DevAddr, little-endian. From its 4 bytes (what Framer passes) nothing is allocated; an
    # int of 2**30 or more is no small int on a 32-bit port (an ESP32), and shifting it allocates.
    if isinstance(dev_addr, int):
        dev_addr = addr_bytes(dev_addr)
    blk[6] = dev_addr[0]
    blk[7] = dev_addr[1]
    blk[8] = dev_addr[2]
    blk[9] = dev_addr[3]


def fill_b0(b0, dev_addr, fcnt, downlink, msg_len):
    # B0 = 49 | 0000 | Dir | DevAddr | FCnt | 00 | len(msg)   (LoRaWAN 1.0.x §4.4)
    b0[0] = 0x49
    b0[1] = b0[2] = b0[3] = b0[4] = 0
    b0[5] = 1 if downlink else 0
    _put_addr(b0, dev_addr)
    b0[10] = fcnt & 0xFF
    b0[11] = (fcnt >> 8) & 0xFF
    b0[12] = (fcnt >> 16) & 0xFF
    b0[13] = (fcnt >> 24) & 0xFF
    b0[14] = 0
    b0[15] = msg_len


def derive_session_keys(app_key, join_nonce, net_id, dev_nonce):
    # LoRaWAN 1.0.x §6.2.5: NwkSKey = AES(AppKey, 01 | JoinNonce | NetID | DevNonce | pad16), AppSKey
    # the same with 02. join_nonce, net_id: 3 bytes as sent (LE); dev_nonce: int. Returns (nwk, app).
    aes = Ecb(app_key)
    blk = bytearray(16)
    out = []
    for kind in (1, 2):
        for i in range(16):
            blk[i] = 0
        blk[0] = kind
        blk[1:4] = join_nonce
        blk[4:7] = net_id
        blk[7] = dev_nonce & 0xFF
        blk[8] = (dev_nonce >> 8) & 0xFF
        k = bytearray(16)
        aes.encrypt(blk, k)
        out.append(bytes(k))
    return out[0], out[1]


def decrypt_join_accept(app_key, frame):
    # frame: MHDR | encrypted (16 or 32 bytes). The server encrypted with AES *decrypt*, so AES *encrypt*
    # recovers it. Returns the plain frame (MHDR..MIC) as a new bytearray after checking the MIC;
    # raises FrameError / MicError.
    from .errors import FrameError, MicError

    n = len(frame)
    if n != 17 and n != 33:
        raise FrameError("a join-accept is 17 or 33 bytes")
    plain = bytearray(frame)
    aes = cryptolib.aes(app_key, _ECB)
    mv = memoryview(plain)
    for off in range(1, n, 16):
        aes.encrypt(mv[off:off + 16], mv[off:off + 16])
    mic = bytearray(4)
    Cmac(app_key).mac_into(plain, n - 4, mic, 0, 4)
    if not ct_equal(mic, 0, plain, n - 4, 4):
        raise MicError("join-accept MIC mismatch")
    return plain
