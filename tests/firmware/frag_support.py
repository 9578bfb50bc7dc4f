# What the TS004 fragmentation tests share under MicroPython (mp_test_fuota_frag.py, mp_test_fuota_groups.py):
# fragments encoded as a server does (uncoded, then TS004's parity rows), and the decoder's files, block,
# status and clean-up read back through its own API.
import os

from bysans.fuota import frag, frag_spec as fs


def files(store):
    try:
        return sorted(n for n in os.listdir(store.root) if n.startswith("frag"))
    except OSError:
        return []


def encode(data, s, r, index=0):
    m = (len(data) + s - 1) // s
    block = data + bytes(m * s - len(data))
    out = [fs.pack_data_fragment(index, n + 1, block[n * s:(n + 1) * s]) for n in range(m)]
    row = bytearray((m + 7) >> 3)
    for k in range(1, r + 1):
        fs.matrix_row(k, m, row)
        acc = bytearray(s)
        for c in range(m):
            if row[c >> 3] >> (c & 7) & 1:
                for i in range(s):
                    acc[i] ^= block[c * s + i]
        out.append(fs.pack_data_fragment(index, m + k, acc))
    return m, m * s - len(data), out


def same(store, data):
    # the rebuilt block against `data`, a chunk at a time (a test's heap is a board's too)
    path = frag.block_path(store)
    if path is None or os.stat(path)[6] != len(data):
        return False
    buf = bytearray(256)
    with open(path, "rb") as f:
        for at in range(0, len(data), 256):
            k = f.readinto(buf)
            if buf[:k] != data[at:at + k]:
                return False
    return True


def status(store, index=0, participants=1):
    ans = frag.handle(fs.pack_status_req(index, participants), store)
    return None if ans is None else fs.unpack_status_ans(ans[1:])


def cleanup(store):
    frag.delete(store)
    try:
        os.rmdir(store.root)
    except OSError:
        pass
