"""`fleet release sign` and `fleet release verify` on a release directory."""

from dataclasses import dataclass
from pathlib import Path

from ..errors import KeyNotFound, ReleaseError, UsageError, VerificationRefused
from ..keys.passphrase import Passphrase
from ..keys.store import KeyStore
from . import metadata
from .build import DEFAULT_EXPIRY, FILES, MANIFEST
from .reasons import Reason
from .verify import Root, Verdict, check_files, verify_release


@dataclass(frozen=True)
class Signed:
    path: str
    version: str
    counter: int
    kommuner: tuple
    expires: int
    keyids: tuple
    digest: str

    def as_dict(self):
        d = self.__dict__.copy()
        d["kommuner"], d["keyids"] = list(self.kommuner), list(self.keyids)
        d["expires_iso"] = metadata.iso(self.expires)
        return d


def read_manifest(release_dir) -> bytes:
    path = Path(release_dir) / MANIFEST
    if not path.is_file():
        raise UsageError(f"{release_dir} is not a release directory (no {MANIFEST})",
                         hint="build one with: fleet release build --board virtual --version 1.0.0 -o DIR")
    return path.read_bytes()


def _pick_keys(root: Root, store: KeyStore, kommuner, keyids):
    """Release keys that cover every kommune, preferring keys with a private key here and fewer keys."""
    if keyids:
        from ..keys.trust import resolve

        chosen = [resolve(root, k) for k in keyids]
    else:
        chosen = []
        for k in kommuner:
            if any(k in root.release.get(c, ()) for c in chosen):
                continue
            cands = [c for c in root.delegated(k) if store.has_private(c)]
            if not cands:
                raise KeyNotFound(f"no release key for kommune {k} has its private key in {store.path}",
                                  hint=f"create one: fleet keys add-release --kommune {k}")
            # the key that covers most of the kommuner asked for
            cands.sort(key=lambda c: (-len(set(root.release[c]) & set(kommuner)), c))
            chosen.append(cands[0])
    for k in kommuner:
        if not any(k in root.release.get(c, ()) and c not in root.revoked for c in chosen):
            raise KeyNotFound(f"none of the keys given is a valid release key for kommune {k}",
                              hint="fleet keys list shows which key serves which kommune")
    return chosen


def sign(release_dir, store: KeyStore, kommuner, passphrase: Passphrase, *, expires_in: int = DEFAULT_EXPIRY,
         keyids=(), now: int | None = None) -> Signed:
    """Signs the release for `kommuner`, with release keys delegated for them; writes release.json."""
    from ..keys.trust import current_root

    now = metadata.now() if now is None else now
    codes = sorted({metadata.kommunekode(k) for k in kommuner})
    if not codes:
        raise UsageError("name the kommune(s) the release is for", hint="fleet release sign DIR --kommune 751")
    if expires_in <= 0:
        raise UsageError("the expiry must lie in the future", hint="e.g. --expires-in 30d")
    data = read_manifest(release_dir)
    body = metadata.body_of(data)
    if body.get("_type") != metadata.RELEASE_TYPE:
        raise ReleaseError(f"{release_dir}/{MANIFEST} is not a release manifest")
    files = check_files(body, Path(release_dir) / FILES)
    if not files.ok:
        raise VerificationRefused(files.reason, f"refusing to sign: {files.reason.message} ({files.detail})",
                                  hint="rebuild the release: its files changed since it was built")
    root = current_root(store, now=now)
    chosen = _pick_keys(root, store, codes, keyids)
    signers = [store.signer(k, passphrase) for k in chosen]
    body["kommuner"] = codes
    body["expires"] = now + expires_in
    signed = metadata.sign(body, signers)
    verdict = verify_release(signed, root, now=now)
    if not verdict.ok:  # never write what devices would refuse
        raise VerificationRefused(verdict.reason, f"the signed release does not verify: {verdict.reason.message}",
                                  hint=verdict.reason.hint)
    path = Path(release_dir) / MANIFEST
    tmp = path.with_name(MANIFEST + ".tmp")
    tmp.write_bytes(signed)
    tmp.replace(path)
    return Signed(str(path), body["version"], body["counter"], tuple(codes), body["expires"], tuple(chosen),
                  verdict.digest.hex())


def verify_dir(release_dir, root: Root, *, now: int, board=None, kommune=None, installed_counter=None,
               installed_digest=None) -> Verdict:
    """The manifest (as a device of `board` in `kommune` would check it), then every file."""
    data = read_manifest(release_dir)
    kommune = metadata.kommunekode(kommune) if kommune is not None else None
    verdict = verify_release(data, root, now=now, board=board, kommune=kommune,
                             installed_counter=installed_counter, installed_digest=installed_digest)
    if not verdict.ok:
        return verdict
    stray = sorted(p.name for p in Path(release_dir).iterdir() if p.name not in (MANIFEST, FILES))
    if stray:  # a release folder is its manifest and its files/ (docs/formats/update-repository.md)
        return Verdict(Reason.UNLISTED, stray[0], verdict.manifest, verdict.digest)
    files = check_files(verdict.manifest, Path(release_dir) / FILES)
    if not files.ok:
        return Verdict(files.reason, files.detail, verdict.manifest, verdict.digest)
    return verdict


def refused(verdict: Verdict) -> VerificationRefused:
    """The error the CLI raises for a refused verdict (its exit code is 10 + the reason code)."""
    detail = f" ({verdict.detail})" if verdict.detail else ""
    return VerificationRefused(verdict.reason, f"refused, {verdict.reason.name}: {verdict.reason.message}{detail}",
                               hint=verdict.reason.hint)


__all__ = ["Signed", "sign", "verify_dir", "read_manifest", "refused", "Reason"]
