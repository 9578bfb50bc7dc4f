"""The key interface: a public key verifies, a Signer signs. Nothing here ever shows private key bytes."""

import abc
import hashlib

from ..errors import KeyUsageError


def keyid(raw_public: bytes) -> str:
    """A key's id: the first 16 bytes of SHA-256 of its 32 raw public bytes, in hex (as on the device)."""
    return hashlib.sha256(raw_public).digest()[:16].hex()


class PublicKey(abc.ABC):
    """A public key: it verifies signatures and has an id; it never signs."""

    algorithm = ""

    @property
    @abc.abstractmethod
    def raw(self) -> bytes:
        """The raw public key bytes (32 for Ed25519)."""

    @property
    def keyid(self) -> str:
        return keyid(self.raw)

    @abc.abstractmethod
    def verify(self, signature: bytes, message: bytes) -> bool:
        """True if `signature` is this key's signature of `message`."""

    def sign(self, message: bytes) -> bytes:
        raise KeyUsageError(f"key {self.keyid} is a public key: it can verify signatures, not make them")

    def __eq__(self, other):
        return isinstance(other, PublicKey) and self.algorithm == other.algorithm and self.raw == other.raw

    def __hash__(self):
        return hash((self.algorithm, self.raw))

    def __repr__(self):
        return f"<{type(self).__name__} {self.keyid}>"


class Signer(abc.ABC):
    """Anything that signs with a private key it never hands out: a key file, an HSM, a signing service.

    `sign` receives the exact message (for release metadata: a 32-byte SHA-256 digest).
    """

    @property
    @abc.abstractmethod
    def public_key(self) -> PublicKey:
        ...

    @property
    def keyid(self) -> str:
        return self.public_key.keyid

    @abc.abstractmethod
    def sign(self, message: bytes) -> bytes:
        ...

    def __repr__(self):
        # Never the private key: only what is public.
        return f"<{type(self).__name__} {self.keyid} (private key not shown)>"

    def __reduce__(self):
        raise KeyUsageError("a signer cannot be pickled or copied: it would carry its private key")
