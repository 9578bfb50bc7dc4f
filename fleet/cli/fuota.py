"""`fleet fuota`: FUOTA fragments (LoRaWAN TS004, FPort 201) a network server sends, and the way back."""

import hashlib
from pathlib import Path

import click

from ..errors import FragmentsError, UsageError
from .common import echo_json

SHOWN = 12  # files listed by name in `fleet fuota payload`'s summary
DEVICE_MAX_BLOCK = 65536  # bysans.fuota.frag's default store.max_block_bytes (docs/formats/fuota.md)


@click.group("fuota")
def command():
    """Fragment a file for LoRaWAN FUOTA (TS004 Fragmented Data Block Transport) and rebuild it.

    The payloads and the session-setup fields are described in docs/formats/fuota.md.

    \b
    Example:
      fleet fuota fragments release.bin --fragment-size 48 --redundancy 10 > frags.txt
      fleet fuota rebuild frags.txt --size 1000 -o release.bin
    """


@command.command("fragments")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--fragment-size", "fragment_size", type=int, required=True,
              help="FragSize: bytes of data in one fragment (1-255; 48 fits EU868 DR0-2).")
@click.option("--redundancy", type=int, required=True,
              help="Coded fragments sent after the uncoded ones (for L lost fragments, L + 2 on average).")
@click.option("--frag-index", "frag_index", type=int, default=0, show_default=True,
              help="FragIndex of the fragmentation session (0-3).")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: the session's setup fields and the payloads (hex), in send order.")
def fragments(file, fragment_size, redundancy, frag_index, as_json):
    """Print FILE's DataFragment payloads (FPort 201, command byte included), one hex line each, in send order.

    Fragment counters start at 1: the uncoded fragments first (the last one padded with zeros), then the
    coded ones. The session's setup fields go to standard error.

    \b
    Example:
      fleet fuota fragments release.bin --fragment-size 48 --redundancy 10 > frags.txt
    """
    from ..fuota.fragments import encode

    session, payloads = encode(file.read_bytes(), fragment_size, redundancy, frag_index=frag_index)
    if as_json:
        echo_json({"nb_frag": session.nb_frag, "frag_size": session.frag_size, "padding": session.padding,
                   "frag_index": session.frag_index, "redundancy": redundancy,
                   "setup_req": session.setup_req().hex(), "fragments": [p.hex() for p in payloads]})
        return
    click.echo("\n".join(p.hex() for p in payloads))
    click.echo(f"{len(payloads)} fragments: NbFrag {session.nb_frag} uncoded + {redundancy} coded, FragSize "
               f"{session.frag_size}, Padding {session.padding}, FragIndex {session.frag_index}; "
               f"FragSessionSetupReq {session.setup_req().hex()}", err=True)


@command.command("rebuild")
@click.argument("lines", type=click.File("r"), default="-")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the rebuilt file here.")
@click.option("--size", type=int, help="The file's length in bytes (sets NbFrag and Padding).")
@click.option("--nb-frag", "nb_frag", type=int, help="NbFrag of the session (instead of --size).")
@click.option("--padding", type=int, default=0, show_default=True, help="Padding of the session (with --nb-frag).")
@click.option("--json", "as_json", is_flag=True, help="Say what was written as one JSON object.")
def rebuild_cmd(lines, output, size, nb_frag, padding, as_json):
    """Rebuild a file from DataFragment hex lines (LINES, or standard input), in any order, some missing.

    \b
    Example:
      fleet fuota rebuild frags.txt --size 1000 -o release.bin
      grep -v '^0802' frags.txt | fleet fuota rebuild --nb-frag 21 --padding 8 -o release.bin
    """
    from ..fuota.rebuild import parse_lines, rebuild

    if (size is None) == (nb_frag is None):
        raise UsageError("give the file's --size, or the session's --nb-frag (and --padding)",
                         hint="'fleet fuota fragments' prints NbFrag and Padding on standard error")
    payloads = parse_lines(lines)
    if size is not None:
        if not payloads:
            raise FragmentsError("no fragment lines were given",
                                 hint="give the file 'fleet fuota fragments' wrote, or pipe it in: ... | fleet fuota rebuild ...")
        frag_size = len(payloads[0]) - 3
        if size < 1 or frag_size < 1:
            raise FragmentsError(f"--size {size} with {frag_size}-byte fragments describes no block")
        nb_frag = -(-size // frag_size)
        padding = nb_frag * frag_size - size
    data = rebuild(payloads, nb_frag=nb_frag, padding=padding)
    output.write_bytes(data)
    if as_json:
        echo_json({"output": str(output), "bytes": len(data), "fragments": len(payloads),
                   "sha256": hashlib.sha256(data).hexdigest()})
        return
    click.echo(f"wrote {output} ({len(data)} bytes from {len(payloads)} fragments)", err=True)


@command.command("payload")
@click.option("--release", "release_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              required=True, help="The signed release folder (fleet release build + sign).")
@click.option("--from", "from_version", help="The version the devices run now, looked up in --repo.")
@click.option("--repo", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The update repository holding that version's manifest (with --from).")
@click.option("--base-manifest", "base_manifest", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The manifest the devices run now (a signed manifest file, or its body).")
@click.option("--kommune", required=True, help="The devices' kommunekode (e.g. 751).")
@click.option("--board", required=True, help="The devices' board name (e.g. virtual).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Write the payload here (then: fleet fuota fragments FILE ...).")
@click.option("--json", "as_json", is_flag=True, help="Print what the payload holds as JSON.")
def payload_cmd(release_dir, from_version, repo, base_manifest, kommune, board, output, as_json):
    """Build the update payload a FUOTA session carries: the signed manifest (as a delta against the release
    the devices run) and the files they lack, compressed. Prints its size and what it holds.

    Without --from or --base-manifest, every file of the release goes in (for devices that run none).

    \b
    Example:
      fleet fuota payload --release rel-1.1.0 --from 1.0.0 --repo updates --kommune 751 --board virtual -o p.bin
      fleet fuota fragments p.bin --fragment-size 48 --redundancy 10 > frags.txt
    """
    from ..fuota.payload import base_from_repo, build
    from ..release import metadata
    from .common import echo_json

    if from_version and base_manifest:
        raise UsageError("give --from VERSION (with --repo) or --base-manifest FILE, not both",
                         hint="--from 1.0.0 --repo updates takes the base from the repository")
    if from_version and not repo:
        raise UsageError("--from needs --repo: the update repository holding that version's manifest",
                         hint="or give the manifest itself: --base-manifest FILE")
    base = None
    if from_version:
        base = base_from_repo(repo, from_version, board, metadata.kommunekode(kommune))
    elif base_manifest:
        base = base_manifest.read_bytes()
    p = build(release_dir, board=board, kommune=kommune, base_body=base)
    output.write_bytes(p.data)
    if as_json:
        echo_json(p.as_dict())
        return
    frm = f"from {p.base['version']} (a manifest delta)" if p.base else "for a device that runs none (whole manifest)"
    click.echo(f"wrote {output}: {p.size} bytes, release {p.version} for {p.board} in kommune {p.kommune}, {frm}")
    click.echo(f"  manifest: {p.manifest_bytes} bytes ({p.manifest_kind})")
    for o in p.objects[:SHOWN]:
        click.echo(f"  {o['path']}: {o['compressed']} bytes ({o['length']} uncompressed)")
    if len(p.objects) > SHOWN:
        click.echo(f"  ... and {len(p.objects) - SHOWN} more files (--json lists them all)")
    click.echo(f"  {p.unchanged} files unchanged (copied on the device from the release it runs)")
    click.echo(f"  fragments before redundancy: {-(-p.size // 48)} of 48 bytes (EU868 DR0), "
               f"{-(-p.size // 239)} of 239 bytes (DR5)")
    if p.size > DEVICE_MAX_BLOCK:
        click.echo(f"warning: {p.size} bytes is more than a node's fragmentation session takes by default "
                   f"({DEVICE_MAX_BLOCK}, store.max_block_bytes): give --from or --base-manifest so that only "
                   "the changed files go", err=True)
