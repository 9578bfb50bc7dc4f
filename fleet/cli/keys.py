"""`fleet keys`: the root key, release keys per kommune, root rotation and revocation."""

import sys

import click

from ..keys import KeyStore, Passphrase
from ..keys import trust
from ..release import metadata
from .common import echo_json


def _prompt(what: str, new: bool) -> str:
    return click.prompt(f"Passphrase for {what}", hide_input=True, confirmation_prompt=new, err=True)


def passphrase_source() -> Passphrase:
    """FLEET_KEY_PASSPHRASE (FLEET_NEW_KEY_PASSPHRASE for new keys), else a prompt when in a terminal."""
    return Passphrase(_prompt if sys.stdin.isatty() else None)


def keys_option(f):
    return click.option("--keys", "keys_dir", envvar="FLEET_KEYS_DIR", type=click.Path(file_okay=False),
                        help="Key directory (default: FLEET_KEYS_DIR, else your config directory).")(f)


def store_of(keys_dir) -> KeyStore:
    return KeyStore(keys_dir)


def _root_key_option(f):
    return click.option("--root-key", type=click.Path(dir_okay=False, exists=True),
                        help="The root's private key file, if kept offline (e.g. on a USB stick).")(f)


def _expiry_option(f):
    return click.option("--expires-in", default="365d", show_default=True,
                        help="How long the new root metadata is valid (e.g. 365d, 52w).")(f)


def _report(change, as_json, text):
    if as_json:
        echo_json(change.as_dict())
    else:
        click.echo(text)
        click.echo(f"root metadata version {change.root_version}: {change.root_path}")


@click.group("keys")
def command():
    """Signing keys: an offline root key delegates release keys, one set per kommune.

    Private keys are kept encrypted (passphrase at the prompt, or FLEET_KEY_PASSPHRASE) and are never
    printed. Every change is a new, signed version of the root metadata that devices check.

    \b
    Example:
      fleet keys init-root
      fleet keys add-release --kommune 751
      fleet keys list
    """


@command.command("init-root")
@keys_option
@_expiry_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def init_root(keys_dir, expires_in, as_json):
    """Create the root key and the first root metadata.

    Afterwards move the root's .key file to offline storage; give it back with --root-key when the root
    must sign (add-release, rotate-root, revoke).

    \b
    Example:
      FLEET_KEYS_DIR=~/bysans-keys fleet keys init-root
    """
    store = store_of(keys_dir)
    change = trust.init_root(store, passphrase_source(), expires_in=metadata.parse_duration(expires_in))
    _report(change, as_json, f"root key {change.keyid} created in {store.path}\n"
            f"keep {store.private_path(change.keyid)} offline; back up the passphrase separately")


@command.command("add-release")
@keys_option
@click.option("--kommune", "kommuner", multiple=True, required=True,
              help="Kommunekode the key may sign releases for (e.g. 751 or 0751); repeatable.")
@_root_key_option
@_expiry_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def add_release(keys_dir, kommuner, root_key, expires_in, as_json):
    """Create a release key and delegate it for a kommune (signed by the root).

    \b
    Example:
      fleet keys add-release --kommune 751
      fleet keys add-release --kommune 0751 --kommune 0727 --root-key /media/usb/root.key
    """
    change = trust.add_release(store_of(keys_dir), kommuner, passphrase_source(), root_key=root_key,
                               expires_in=metadata.parse_duration(expires_in))
    _report(change, as_json, f"release key {change.keyid} for kommune {', '.join(change.kommuner)}")


@command.command("rotate-root")
@keys_option
@_root_key_option
@_expiry_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def rotate_root(keys_dir, root_key, expires_in, as_json):
    """Replace the root key; the new root metadata is signed by the old and the new root.

    The new key's passphrase comes from FLEET_NEW_KEY_PASSPHRASE (or FLEET_KEY_PASSPHRASE), or a prompt.

    \b
    Example:
      fleet keys rotate-root --root-key /media/usb/old-root.key
    """
    change = trust.rotate_root(store_of(keys_dir), passphrase_source(), root_key=root_key,
                               expires_in=metadata.parse_duration(expires_in))
    _report(change, as_json, f"new root key {change.keyid}")


@command.command("revoke")
@keys_option
@click.argument("keyid")
@_root_key_option
@_expiry_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def revoke(keys_dir, keyid, root_key, expires_in, as_json):
    """Revoke a release key (signed by the root): devices refuse what it signs.

    KEYID is a key id from 'fleet keys list' (8 hex digits or more).

    \b
    Example:
      fleet keys revoke 3f2a9c1e
    """
    change = trust.revoke(store_of(keys_dir), keyid, passphrase_source(), root_key=root_key,
                          expires_in=metadata.parse_duration(expires_in))
    _report(change, as_json, f"release key {change.keyid} revoked")


@command.command("list")
@keys_option
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(keys_dir, as_json):
    """List the keys the current root names: role, kommuner, revoked, private key present here.

    \b
    Example:
      fleet keys list --json
    """
    info = trust.list_keys(store_of(keys_dir))
    if as_json:
        echo_json(info)
        return
    click.echo(f"{info['keys_dir']}: root metadata version {info['root_version']}, "
               f"expires {info['root_expires_iso']}")
    for k in info["keys"]:
        flags = []
        if k["revoked"]:
            flags.append("REVOKED")
        flags.append("private key here" if k["private_key_here"] else "no private key here")
        kommuner = ",".join(k["kommuner"]) or "-"
        click.echo(f"  {k['keyid']}  {k['role']:<7}  {kommuner:<12}  {'; '.join(flags)}")
