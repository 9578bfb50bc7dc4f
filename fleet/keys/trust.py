"""The trust operations: create the root, delegate release keys per kommune, rotate the root, revoke.

Each change is a new version of the root metadata, signed by a threshold of the current root keys and
of the new root keys (for a rotation, the old and the new root). Devices walk these versions in order.
"""

from dataclasses import dataclass

from ..errors import Conflict, KeyNotFound, KeyUsageError
from ..release import metadata
from ..release.verify import Refusal, Root, load_root, walk_roots
from .ed25519 import generate
from .passphrase import Passphrase
from .store import KeyStore

DEFAULT_ROOT_EXPIRY = 365 * 86400


@dataclass(frozen=True)
class Change:
    """What a trust operation did (no secrets)."""

    root_version: int
    root_path: str
    keyid: str | None = None
    kommuner: tuple = ()

    def as_dict(self):
        return {"root_version": self.root_version, "root_metadata": self.root_path, "keyid": self.keyid,
                "kommuner": list(self.kommuner)}


def current_root(store: KeyStore, *, now: int | None = None) -> Root:
    """The store's root, its whole chain checked (the expiry only if `now` is given)."""
    chain = store.root_chain()
    if not chain:
        raise KeyNotFound(f"no root metadata in {store.path}", hint="create the root key: fleet keys init-root")
    try:
        return walk_roots(chain, None, now)
    except Refusal as e:
        raise KeyUsageError(f"the root metadata in {store.root_dir} does not verify: {e.reason.name} {e.detail}",
                            hint="restore the key directory from its backup") from None


def _body(version, expires, keys, root_keyids, release, revoked, threshold=1):
    return {"_type": metadata.ROOT_TYPE, "format": metadata.FORMAT, "version": version, "expires": expires,
            "keys": keys, "root": {"keyids": sorted(root_keyids), "threshold": threshold},
            "release": {k: sorted(v) for k, v in release.items()}, "revoked": sorted(revoked)}


def _root_signers(store, root: Root, passphrase, root_key):
    kid = root.root_keyids[0] if len(root.root_keyids) == 1 else None
    if kid is None:
        raise KeyUsageError("this root has several keys; multi-key root signing is not supported by the CLI yet")
    return [store.signer(kid, passphrase, root_key)]


def init_root(store: KeyStore, passphrase: Passphrase, *, expires_in: int = DEFAULT_ROOT_EXPIRY,
              now: int | None = None) -> Change:
    if store.root_versions():
        raise Conflict(f"{store.path} already has a root (version {store.root_versions()[-1]})",
                       hint="rotate it with 'fleet keys rotate-root', or pick another directory with --keys")
    now = metadata.now() if now is None else now
    key = generate()
    store.save(key, passphrase.get_new("the new root key"))
    kid = key.keyid
    body = _body(1, now + expires_in, {kid: key.public_key.raw.hex()}, [kid], {}, [])
    path = store.write_root(1, metadata.sign(body, [key]))
    return Change(1, str(path), kid)


def _write_next(store, root, data, now):
    """Checks the next root version exactly as a device would (signed by the current root and by
    itself, a higher version, not expired), then writes it."""
    try:
        load_root(data, root, now)
    except Refusal as e:  # a bug, not bad input: never write metadata devices would refuse
        raise KeyUsageError(f"the new root metadata does not verify ({e.reason.name}: {e.detail})") from None
    return store.write_root(root.version + 1, data)


def _keys_hex(root: Root) -> dict:
    return {k: v.raw.hex() for k, v in root.keys.items()}


def add_release(store: KeyStore, kommuner, passphrase: Passphrase, *, root_key=None,
                expires_in: int = DEFAULT_ROOT_EXPIRY, now: int | None = None) -> Change:
    """A new release key, delegated for `kommuner` (kommunekoder), in a new root version."""
    now = metadata.now() if now is None else now
    codes = sorted({metadata.kommunekode(k) for k in kommuner})
    if not codes:
        raise KeyUsageError("a release key needs at least one kommune", hint="fleet keys add-release --kommune 751")
    root = current_root(store)
    signers = _root_signers(store, root, passphrase, root_key)  # open the root first: fail before generating
    key = generate()
    store.save(key, passphrase.get_new(f"the new release key for {', '.join(codes)}"))
    keys = _keys_hex(root)
    keys[key.keyid] = key.public_key.raw.hex()
    release = dict(root.release)
    release[key.keyid] = codes
    body = _body(root.version + 1, now + expires_in, keys, root.root_keyids, release, root.revoked)
    path = _write_next(store, root, metadata.sign(body, signers), now)
    return Change(root.version + 1, str(path), key.keyid, tuple(codes))


def rotate_root(store: KeyStore, passphrase: Passphrase, *, root_key=None, expires_in: int = DEFAULT_ROOT_EXPIRY,
                now: int | None = None) -> Change:
    """A new root key; the new root version is signed by the old root and the new one."""
    now = metadata.now() if now is None else now
    root = current_root(store)
    old = _root_signers(store, root, passphrase, root_key)
    key = generate()
    store.save(key, passphrase.get_new("the new root key"))
    keys = {k: v for k, v in _keys_hex(root).items() if k not in root.root_keyids}
    keys[key.keyid] = key.public_key.raw.hex()
    body = _body(root.version + 1, now + expires_in, keys, [key.keyid], root.release, root.revoked)
    path = _write_next(store, root, metadata.sign(body, old + [key]), now)
    return Change(root.version + 1, str(path), key.keyid)


def revoke(store: KeyStore, kid: str, passphrase: Passphrase, *, root_key=None,
           expires_in: int = DEFAULT_ROOT_EXPIRY, now: int | None = None) -> Change:
    """Revokes release key `kid` (a unique prefix of at least 8 hex digits will do)."""
    now = metadata.now() if now is None else now
    root = current_root(store)
    kid = resolve(root, kid)
    if kid in root.root_keyids:
        raise KeyUsageError(f"{kid} is the root key: it cannot revoke itself",
                            hint="replace a root key with 'fleet keys rotate-root'")
    if kid in root.revoked:
        raise Conflict(f"key {kid} is already revoked")
    signers = _root_signers(store, root, passphrase, root_key)
    body = _body(root.version + 1, now + expires_in, _keys_hex(root), root.root_keyids, root.release,
                 list(root.revoked) + [kid])
    path = _write_next(store, root, metadata.sign(body, signers), now)
    return Change(root.version + 1, str(path), kid, tuple(root.release.get(kid, ())))


def resolve(root: Root, prefix: str) -> str:
    prefix = prefix.strip().lower()
    hits = [k for k in root.keys if k.startswith(prefix)] if len(prefix) >= 8 else []
    if len(hits) != 1:
        raise KeyNotFound(f"no single key matches '{prefix}'" if not hits else f"'{prefix}' matches several keys",
                          hint="give at least 8 hex digits of a key id from 'fleet keys list'")
    return hits[0]


def list_keys(store: KeyStore) -> dict:
    """The keys the current root names, with their roles; and the root's version and expiry."""
    root = current_root(store)
    rows = []
    for kid in sorted(root.keys):
        role = "root" if kid in root.root_keyids else "release"
        rows.append({"keyid": kid, "role": role, "kommuner": root.release.get(kid, []),
                     "revoked": kid in root.revoked, "private_key_here": store.has_private(kid)})
    return {"keys_dir": str(store.path), "root_version": root.version, "root_expires": root.expires,
            "root_expires_iso": metadata.iso(root.expires), "keys": rows}
