"""Secrets at rest: AppKeys are sealed with AES-256-GCM before they reach the database.

The key comes from, in order:
  1. FLEET_SECRET_KEY: 32 bytes, base64 (urlsafe or standard) or 64 hex digits — for a shared
     PostgreSQL installation every operator's machine needs the same key;
  2. FLEET_KEY_FILE, or `registry.key` in the user's data directory: created on first use with
     mode 0600 (32 random bytes, base64).

A sealed value is  b"\\x01" | key id (4 bytes: SHA-256(key)[:4]) | nonce (12) | ciphertext+tag,  and the
associated data binds it to its device and field (`DevEUI/field`), so a sealed AppKey copied onto another
row does not open. Nothing in this module logs or puts key material into an exception.
"""

import base64
import binascii
import hashlib
import os
from pathlib import Path

from ..errors import SecretKeyError

VERSION = 1
_HEADER = 1 + 4 + 12
SEALED_EMPTY = _HEADER + 16  # the length of a sealed empty secret: the header and GCM's tag
ENV_KEY = "FLEET_SECRET_KEY"
ENV_KEY_FILE = "FLEET_KEY_FILE"


def default_key_file() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("bysans", appauthor=False)) / "registry.key"


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    raw = None
    if len(text) == 64:
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_" if ("-" in text or "_" in text)
                                   else None, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != 32:
        # Never echo the value: it may be a near-miss of the real key.
        raise SecretKeyError(f"the secret key in {where} is not 32 bytes in base64 or hex")
    return raw


def load_key(key_file: str | os.PathLike | None = None, *, create: bool = True) -> bytes:
    """The registry's 32-byte key, from the environment or the key file (created 0600 if missing)."""
    env = os.environ.get(ENV_KEY)
    if env:
        return _decode_key(env, ENV_KEY)
    path = Path(key_file or os.environ.get(ENV_KEY_FILE) or default_key_file())
    try:
        return _decode_key(path.read_text(), str(path))
    except FileNotFoundError:
        if not create:
            raise SecretKeyError(f"no secret key file at {path}") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    key = os.urandom(32)  # what AESGCM.generate_key(bit_length=256) returns
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process created it meanwhile: use theirs
        return _decode_key(path.read_text(), str(path))
    with os.fdopen(fd, "w") as f:
        f.write(base64.urlsafe_b64encode(key).decode() + "\n")
    return key


class Sealer:
    """Seals and opens short secrets with one AES-256-GCM key. Its repr shows only the key id."""

    __slots__ = ("_key", "_cipher", "key_id")

    def __init__(self, key: bytes):
        if len(key) != 32:
            raise SecretKeyError("the secret key must be 32 bytes")
        self._key = bytes(key)
        self._cipher = None  # AESGCM, made at the first seal or open (a listing never loads cryptography)
        self.key_id = hashlib.sha256(key).digest()[:4]

    def _aead(self):
        if self._cipher is None:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            self._cipher = AESGCM(self._key)
        return self._cipher

    def __repr__(self) -> str:
        return f"<Sealer key_id={self.key_id.hex()}>"

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(12)
        return bytes([VERSION]) + self.key_id + nonce + self._aead().encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        sealed = bytes(sealed)
        if len(sealed) < _HEADER + 16 or sealed[0] != VERSION:
            raise SecretKeyError(f"the sealed secret for {context} is damaged or of an unknown version",
                                 hint="restore the registry from a backup")
        if sealed[1:5] != self.key_id:
            raise SecretKeyError(f"the secret for {context} was sealed with another key "
                                 f"(key id {sealed[1:5].hex()}, this key is {self.key_id.hex()})")
        from cryptography.exceptions import InvalidTag

        try:
            return self._aead().decrypt(sealed[5:17], sealed[17:], context.encode())
        except InvalidTag:
            raise SecretKeyError(f"the sealed secret for {context} does not open: damaged or moved "
                                 "from another device's row", hint="restore the registry from a backup") from None
