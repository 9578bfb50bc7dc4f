"""Ed25519 keys: public keys, and private keys kept in passphrase-protected PKCS#8 files."""

import os
from pathlib import Path

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519 as _ed

from ..errors import KeyNotFound, KeyPassphraseError, KeyUsageError
from .base import PublicKey, Signer
from .passphrase import Passphrase


class Ed25519PublicKey(PublicKey):
    algorithm = "ed25519"

    def __init__(self, raw: bytes):
        if len(raw) != 32:
            raise KeyUsageError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
        self._raw = bytes(raw)
        self._key = _ed.Ed25519PublicKey.from_public_bytes(self._raw)

    @classmethod
    def from_hex(cls, text: str) -> "Ed25519PublicKey":
        try:
            return cls(bytes.fromhex(text))
        except ValueError:
            raise KeyUsageError("a public key is not hex") from None

    @property
    def raw(self) -> bytes:
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(bytes(signature), bytes(message))
            return True
        except InvalidSignature:
            return False

    def to_pem(self) -> bytes:
        return self._key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


class Ed25519FileSigner(Signer):
    """A private key read from (or about to be written to) an encrypted PKCS#8 file.

    The key object lives in memory only as long as this signer does; repr, str and errors show the
    key id, never key bytes, and the signer refuses to be pickled.
    """

    def __init__(self, key: _ed.Ed25519PrivateKey, *, path: Path | None = None):
        self.__key = key
        raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        self._public = Ed25519PublicKey(raw)
        self.path = path

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return self.__key.sign(bytes(message))

    def save(self, path: Path, passphrase: bytes) -> Path:
        """Writes the key encrypted with `passphrase` (PKCS#8, BestAvailableEncryption), mode 0600."""
        if not passphrase:
            raise KeyPassphraseError("a private key is never written without a passphrase")
        data = self.__key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.BestAvailableEncryption(passphrase))
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        self.path = path
        return path


def generate() -> Ed25519FileSigner:
    """A new random Ed25519 key (from the OS's CSPRNG, through OpenSSL)."""
    return Ed25519FileSigner(_ed.Ed25519PrivateKey.generate())


def _read(path) -> bytes:
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise KeyNotFound(f"no key file at {path}") from None


def load_signer(path, passphrase: Passphrase) -> Ed25519FileSigner:
    """Opens an encrypted private key file. A public key file is a KeyUsageError; a wrong passphrase a
    KeyPassphraseError (the underlying error is dropped: nothing of the file reaches the message)."""
    path = Path(path)
    data = _read(path)
    if b"PUBLIC KEY" in data and b"PRIVATE KEY" not in data:
        raise KeyUsageError(f"{path} holds a public key: it can verify signatures, not make them")
    if b"ENCRYPTED PRIVATE KEY" not in data:
        raise KeyPassphraseError(f"{path} is not an encrypted private key file",
                                 hint="private keys are kept encrypted; create keys with 'fleet keys'")
    secret = passphrase.get(f"key {path.name}")
    try:
        key = serialization.load_pem_private_key(data, password=secret)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise KeyPassphraseError(f"cannot open {path}: wrong passphrase, or not a key file") from None
    finally:
        del secret
    if not isinstance(key, _ed.Ed25519PrivateKey):
        raise KeyUsageError(f"{path} is not an Ed25519 key")
    return Ed25519FileSigner(key, path=path)


def load_public(path) -> Ed25519PublicKey:
    """A public key from a PEM (SubjectPublicKeyInfo) file."""
    data = _read(path)
    if b"PRIVATE KEY" in data:
        raise KeyUsageError(f"{path} holds a private key: give the public key (.pub) file")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        raise KeyUsageError(f"{path} is not a PEM public key") from None
    if not isinstance(key, _ed.Ed25519PublicKey):
        raise KeyUsageError(f"{path} is not an Ed25519 key")
    return Ed25519PublicKey(key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))
