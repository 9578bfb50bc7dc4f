"""Signing keys: the offline root key, release keys delegated per kommune, and the trust metadata
(root rotation, delegation, revocation) that devices check. See docs/formats/update-repository.md.

Signing goes through one interface, `Signer` (a passphrase-protected key file today, an HSM tomorrow);
public keys are another type and cannot sign.
"""

from .base import PublicKey, Signer, keyid
from .ed25519 import Ed25519PublicKey, Ed25519FileSigner, generate, load_public, load_signer
from .passphrase import Passphrase, from_env
from .store import KeyStore, default_keys_dir

__all__ = ["PublicKey", "Signer", "keyid", "Ed25519PublicKey", "Ed25519FileSigner", "generate",
           "load_public", "load_signer", "Passphrase", "from_env", "KeyStore", "default_keys_dir"]
