"""Keys: passphrase-protected files, public vs private types, no secrets in repr or errors, root changes."""

import pickle

import pytest
from cryptography.hazmat.primitives import serialization

from fleet.errors import Conflict, KeyPassphraseError, KeyUsageError
from fleet.keys import KeyStore, Passphrase, from_env, generate, load_public, load_signer
from fleet.keys import trust
from fleet.release.verify import Reason, Refusal, load_root, walk_roots

PW = {"FLEET_KEY_PASSPHRASE": "correct horse battery"}


def _raw_private(signer) -> bytes:
    # Only tests reach into the key: to prove its bytes never leak.
    key = signer._Ed25519FileSigner__key
    return key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())


def test_key_file_needs_its_passphrase(tmp_path):
    key = generate()
    path = key.save(tmp_path / "k.key", b"correct horse battery")
    assert (path.stat().st_mode & 0o777) == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    assert _raw_private(key) not in path.read_bytes()
    with pytest.raises(KeyPassphraseError) as e:
        load_signer(path, from_env({"FLEET_KEY_PASSPHRASE": "wrong passphrase"}))
    assert "wrong passphrase" not in str(e.value) or "correct" not in str(e.value)
    with pytest.raises(KeyPassphraseError):
        load_signer(path, from_env({}))  # no passphrase, no prompt
    # cryptography itself refuses it without the passphrase
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(path.read_bytes(), password=None)
    opened = load_signer(path, from_env(PW))
    assert opened.keyid == key.keyid


def test_new_passphrase_must_not_be_short(tmp_path):
    with pytest.raises(KeyPassphraseError):
        from_env({"FLEET_KEY_PASSPHRASE": "short"}).get_new("x")


def test_public_key_cannot_sign(tmp_path):
    key = generate()
    with pytest.raises(KeyUsageError):
        key.public_key.sign(b"x")
    pub = tmp_path / "k.pub"
    pub.write_bytes(key.public_key.to_pem())
    with pytest.raises(KeyUsageError, match="public key"):
        load_signer(pub, from_env(PW))
    assert load_public(pub) == key.public_key


def test_no_secret_in_repr_or_pickle():
    key = generate()
    raw = _raw_private(key)
    for text in (repr(key), str(key), repr(Passphrase(None, environ=PW)), repr(from_env(PW))):
        assert raw.hex() not in text and "correct horse" not in text
    with pytest.raises(KeyUsageError):
        pickle.dumps(key)
    sig = key.sign(b"m")
    key.public_key._key.verify(sig, b"m")  # cryptography's own verifier


def test_root_changes_make_a_verifiable_chain(tmp_path):
    store = KeyStore(tmp_path / "keys")
    pw = from_env(PW)
    c1 = trust.init_root(store, pw)
    with pytest.raises(Conflict):
        trust.init_root(store, pw)
    c2 = trust.add_release(store, ["751"], pw)
    assert c2.kommuner == ("0751",)
    c3 = trust.rotate_root(store, from_env({**PW, "FLEET_NEW_KEY_PASSPHRASE": "another long passphrase"}))
    c4 = trust.revoke(store, c2.keyid[:10], from_env({"FLEET_KEY_PASSPHRASE": "another long passphrase"}))
    assert [c.root_version for c in (c1, c2, c3, c4)] == [1, 2, 3, 4]
    chain = store.root_chain()
    root = walk_roots(chain, None, None)
    assert root.root_keyids == [c3.keyid] and c1.keyid not in root.keys
    assert c2.keyid in root.revoked and root.delegated("0751") == []
    # version 3 (the rotation) is refused by a device that trusts v2 unless the old root signed it
    r2 = walk_roots(chain[:2])
    assert load_root(chain[2], r2).version == 3
    with pytest.raises(Refusal) as e:
        load_root(chain[1], walk_roots(chain[:3]))
    assert e.value.reason is Reason.DOWNGRADE
    listing = trust.list_keys(store)
    assert {k["role"] for k in listing["keys"]} == {"root", "release"}
    with pytest.raises(KeyUsageError):
        trust.revoke(store, c3.keyid, from_env({"FLEET_KEY_PASSPHRASE": "another long passphrase"}))


def test_wrong_root_passphrase_changes_nothing(tmp_path):
    store = KeyStore(tmp_path / "keys")
    trust.init_root(store, from_env(PW))
    with pytest.raises(KeyPassphraseError):
        trust.add_release(store, ["751"], from_env({"FLEET_KEY_PASSPHRASE": "not the passphrase"}))
    assert store.root_versions() == [1]
    assert len(list(store.keys_dir.glob("*.key"))) == 1
