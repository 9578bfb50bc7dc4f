"""`fleet release`: build, sign, verify and publish signed app releases."""

import click

from ..errors import UsageError
from ..release import build as _build
from ..release import metadata
from ..release import repository
from ..release import sign as _sign
from ..release.reasons import Reason
from ..release.verify import Refusal, load_root, walk_roots
from .common import echo_json
from .keys import keys_option, passphrase_source, store_of


@click.group("release")
def command():
    """Build, sign, verify and publish app releases for the OTA client.

    \b
    Example:
      fleet release build --board virtual --version 1.0.0 -o rel
      fleet release sign rel --kommune 751
      fleet release verify rel --board virtual --kommune 751
      fleet release publish rel --repo /srv/bysans
    """


@command.command("build")
@click.option("--board", required=True, help="Board definition in boards/ (sets the mpy-cross arch).")
@click.option("--version", "version", required=True, help="Release version, e.g. 1.4.0.")
@click.option("--src", type=click.Path(file_okay=False, exists=True),
              help="App sources (default: the project's firmware/).")
@click.option("--counter", type=click.IntRange(0), help="Monotonic release counter (default: now, in Unix seconds).")
@click.option("-o", "--out", required=True, type=click.Path(file_okay=False), help="Release directory to write.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def build(board, version, src, counter, out, as_json):
    """Compile the app for a board (.py -> .mpy; boot.py and main.py stay .py) with an unsigned manifest.

    \b
    Example:
      fleet release build --board virtual --version 1.0.0 -o rel
    """
    res = _build.build(board, version, out, src=src, counter=counter)
    if as_json:
        echo_json(res.as_dict())
    else:
        click.echo(f"{res.path}: {res.version} (counter {res.counter}) for {res.board} ({res.arch}), "
                   f"{res.files} files, {res.bytes} bytes, {res.blocks} littlefs blocks"
                   + (f" of the board's {res.budget_blocks} per slot" if res.budget_blocks else "")
                   + f"; next: fleet release sign {res.path} --kommune K")


@command.command("sign")
@click.argument("release_dir", type=click.Path(file_okay=False, exists=True))
@keys_option
@click.option("--kommune", "kommuner", multiple=True, required=True,
              help="Kommunekode the release is for (repeatable); signed by a key delegated for each.")
@click.option("--key", "keyids", multiple=True, help="Sign with this release key id (default: picked per kommune).")
@click.option("--expires-in", default="30d", show_default=True, help="How long devices accept the release.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def sign(release_dir, keys_dir, kommuner, keyids, expires_in, as_json):
    """Sign a built release for one or more kommuner.

    \b
    Example:
      fleet release sign rel --kommune 751 --expires-in 30d
    """
    res = _sign.sign(release_dir, store_of(keys_dir), kommuner, passphrase_source(),
                     expires_in=metadata.parse_duration(expires_in), keyids=keyids)
    if as_json:
        echo_json(res.as_dict())
    else:
        click.echo(f"signed {res.version} (counter {res.counter}) for {', '.join(res.kommuner)} with "
                   f"{', '.join(res.keyids)}; expires {metadata.iso(res.expires)}")


_EXIT_CODES = "\n".join(f"  {r.exit_code:>3}  {r.name}" for r in Reason if r is not Reason.OK)


@command.command("verify", help=f"""Check a release as a device would: signature, delegation, revocation,
expiry, board, kommune, counter, and every file's length and SHA-256.

Exits 0 when accepted; otherwise one line saying why and the exit code of the reason:

\b
{_EXIT_CODES}

\b
Example:
  fleet release verify rel --board virtual --kommune 751 --installed-counter 41
  fleet release verify rel --root enrolled-root.json --at 2026-03-01 --json
""")
@click.argument("release_dir", type=click.Path(file_okay=False, exists=True))
@keys_option
@click.option("--root", "root_file", type=click.Path(dir_okay=False, exists=True),
              help="Trust this root metadata (e.g. what a device was enrolled with) instead of the key "
                   "directory's; newer versions from the key directory are walked from it.")
@click.option("--board", help="Check as a device of this board (default: any board the release names).")
@click.option("--kommune", help="Check as a device of this kommune (default: every kommune the release names).")
@click.option("--installed-counter", type=click.IntRange(0), help="Counter of the installed release.")
@click.option("--at", "at", help="Check as of this time (ISO 8601 or @unix-seconds; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict as JSON.")
def verify(release_dir, keys_dir, root_file, board, kommune, installed_counter, at, as_json):
    now = metadata.parse_time(at) if at else metadata.now()
    root, verdict = _trusted_root(store_of(keys_dir), root_file, now)
    if root is not None:
        verdict = _sign.verify_dir(release_dir, root, now=now, board=board, kommune=kommune,
                                   installed_counter=installed_counter)
    if as_json:
        echo_json(verdict.as_dict())
    if not verdict.ok:
        raise _sign.refused(verdict)
    if not as_json:
        m = verdict.manifest
        click.echo(f"ok: {m['version']} (counter {m['counter']}) for {', '.join(m['boards'])} in "
                   f"{', '.join(m['kommuner'])}, {len(m['files'])} files, expires {metadata.iso(m['expires'])}")


def _trusted_root(store, root_file, now):
    """(root, None) to verify against, or (None, Verdict) if the root metadata itself is refused."""
    from ..release.verify import Verdict

    try:
        if root_file:
            with open(root_file, "rb") as f:
                trusted = load_root(f.read())
            newer = [store.root_path(v).read_bytes() for v in store.root_versions() if v > trusted.version]
            root = walk_roots(newer, trusted, now) if newer else load_root(trusted.data, None, now)
        else:
            chain = store.root_chain()
            if not chain:
                raise UsageError(f"no root metadata in {store.path}",
                                 hint="give --keys DIR (or FLEET_KEYS_DIR), or --root FILE")
            root = walk_roots(chain, None, now)
    except Refusal as e:
        return None, Verdict(e.reason, "root metadata: " + e.detail)
    return root, None


@command.command("publish")
@click.argument("release_dir", type=click.Path(file_okay=False, exists=True))
@click.option("--repo", "-o", required=True, type=click.Path(file_okay=False),
              help="Update repository directory (static files for any web server).")
@keys_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def publish(release_dir, repo, keys_dir, as_json):
    """Publish a signed release into a static, content-addressed update repository.

    Only files whose content is new are added (compressed, named by their SHA-256); each kommune/board
    channel the release names then points at it. A lower counter than a channel's is refused.

    \b
    Example:
      fleet release publish rel --repo /srv/bysans
    """
    res = repository.publish(release_dir, repo, store_of(keys_dir))
    if as_json:
        echo_json(res.as_dict())
    else:
        click.echo(f"published to {res.repo}: channels {', '.join(res.channels)}; {res.objects_new} new "
                   f"objects ({res.bytes_new} bytes), {res.objects_kept} unchanged")
