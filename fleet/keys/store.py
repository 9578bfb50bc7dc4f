"""A key directory: encrypted private keys, public keys, and every version of the signed root metadata.

    DIR/keys/<keyid>.key     private key, PKCS#8 PEM encrypted with the key's passphrase (mode 0600)
    DIR/keys/<keyid>.pub     public key, PEM (SubjectPublicKeyInfo)
    DIR/root/<N>.json        signed root metadata, version N (the chain devices walk; never rewritten)

The root's private key belongs offline: move DIR/keys/<root keyid>.key to removable media and pass it with
--root-key when the root must sign. DIR comes from --keys, FLEET_KEYS_DIR, or the user's config directory.
"""

import os
from pathlib import Path

from ..errors import Conflict, KeyNotFound
from .ed25519 import Ed25519FileSigner, Ed25519PublicKey, load_public, load_signer
from .passphrase import Passphrase

ENV_DIR = "FLEET_KEYS_DIR"


def default_keys_dir() -> Path:
    env = os.environ.get(ENV_DIR)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_config_dir("bysans-fleet")) / "keys"


class KeyStore:
    def __init__(self, path: Path | str | None = None):
        self.path = Path(path) if path is not None else default_keys_dir()

    def __repr__(self):
        return f"<KeyStore {self.path}>"

    @property
    def keys_dir(self) -> Path:
        return self.path / "keys"

    @property
    def root_dir(self) -> Path:
        return self.path / "root"

    def _ensure(self):
        for d in (self.path, self.keys_dir, self.root_dir):
            d.mkdir(parents=True, exist_ok=True)
            os.chmod(d, 0o700)

    # ---- keys ----
    def private_path(self, kid: str) -> Path:
        return self.keys_dir / f"{kid}.key"

    def public_path(self, kid: str) -> Path:
        return self.keys_dir / f"{kid}.pub"

    def has_private(self, kid: str) -> bool:
        return self.private_path(kid).is_file()

    def save(self, signer: Ed25519FileSigner, passphrase: bytes) -> Path:
        self._ensure()
        kid = signer.keyid
        self.public_path(kid).write_bytes(signer.public_key.to_pem())
        return signer.save(self.private_path(kid), passphrase)

    def signer(self, kid: str, passphrase: Passphrase, path: Path | str | None = None) -> Ed25519FileSigner:
        """Opens the private key `kid` (from `path` if given, e.g. the offline root key on a USB stick)."""
        p = Path(path) if path is not None else self.private_path(kid)
        if not p.is_file():
            raise KeyNotFound(f"the private key {kid} is not at {p}",
                              hint="give the key file with --root-key (an offline root key lives on removable "
                                   "media), or pick the key directory with --keys")
        s = load_signer(p, passphrase)
        if s.keyid != kid:
            raise KeyNotFound(f"{p} holds key {s.keyid}, not {kid}")
        return s

    def public(self, kid: str) -> Ed25519PublicKey:
        return load_public(self.public_path(kid))

    # ---- root metadata ----
    def root_versions(self) -> list[int]:
        if not self.root_dir.is_dir():
            return []
        return sorted(int(p.stem) for p in self.root_dir.glob("*.json") if p.stem.isdigit())

    def root_path(self, version: int) -> Path:
        return self.root_dir / f"{version}.json"

    def root_chain(self) -> list[bytes]:
        return [self.root_path(v).read_bytes() for v in self.root_versions()]

    def latest_root_bytes(self) -> bytes:
        versions = self.root_versions()
        if not versions:
            raise KeyNotFound(f"no root metadata in {self.path}", hint="create the root key: fleet keys init-root")
        return self.root_path(versions[-1]).read_bytes()

    def write_root(self, version: int, data: bytes) -> Path:
        self._ensure()
        path = self.root_path(version)
        if path.exists():
            raise Conflict(f"root metadata version {version} already exists in {self.root_dir}",
                           hint="root metadata is never rewritten: each change makes the next version")
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        os.replace(tmp, path)
        return path
