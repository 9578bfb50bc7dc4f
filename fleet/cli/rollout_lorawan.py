"""`fleet rollout start|next|status --via lorawan`: a release as a FUOTA deployment (docs/formats/fuota.md,
"Deployment").

start: plans the multicast session (fleet.fuota.deploy) for the kommune's devices of one board, puts them in
waves (fleet.fuota.rollout), says the payload's size and the session's timing before anything is sent,
writes the deployment folder a network server needs with the first wave's session (the payload, its
DataFragments, the multicast frames ready for a gateway, each device's unicast set-up requests, ChirpStack
v4's FuotaService bodies) and keeps the rollout (fleet.fuota.store), which ingest then moves.
next: the next wave's session, for exactly its devices, in FOLDER/session-N. No key is written: McKey only
leaves in the frames and, encrypted, in McGroupSetupReq.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import click

from ..errors import UsageError
from ..fuota import clock as fclock
from ..fuota import deploy
from ..fuota.payload import base_from_repo, build
from ..fuota.rollout import LorawanRollout
from ..release import metadata
from ..rollout.waves import check_seed, new_seed


def _devices(db_url, operator, kommune, board, only, from_version, new_version):
    """(targets, skipped): the kommune's devices of `board` (or those named) that run `from_version`."""
    from ..registry import Operator, Registry

    reg = Registry.open(db_url)
    try:
        op = Operator(operator, kommune=kommune, role="kommune")
        recs = [r for r in reg.list_devices(op, kommune=kommune) if r.board == board]
        if only:
            wanted = {d.upper() for d in only}
            recs = [r for r in recs if r.dev_eui.upper() in wanted]
            missing = wanted - {r.dev_eui.upper() for r in recs}
            if missing:
                raise UsageError(f"no {board} device {sorted(missing)[0]} in kommune {kommune}",
                                 hint="fleet devices list shows the kommune's devices and their boards")
        skipped, keep = [], []
        for r in recs:
            if r.firmware_version == new_version:
                skipped.append((r.dev_eui, f"runs {new_version} already"))
            elif from_version and r.firmware_version and r.firmware_version != from_version:
                skipped.append((r.dev_eui, f"runs {r.firmware_version}, not {from_version}: another payload"))
            else:
                keep.append(r)
        keys = reg.app_keys(op, [r.dev_eui for r in keep], purpose="fuota deployment") if keep else {}
    finally:
        reg.close()
    return [deploy.Target(r.dev_eui.lower(), keys[r.dev_eui], board=r.board, kommune=r.kommune_kode,
                          version=r.firmware_version) for r in keep], skipped


def _folder_ok(out: Path, first: str):
    if out.exists() and (out / first).exists():
        raise UsageError(f"{out} holds a deployment already ({first})",
                         hint="give a new or empty folder with -o, or abort that rollout first")


def write_session(out: Path, plan, targets, session_gps: int, bodies) -> list[str]:
    """One multicast session's files in `out`: its DataFragments, the multicast frames with their send times,
    each device's unicast set-up requests, and ChirpStack's bodies when given. Returns the names written."""
    out.mkdir(parents=True, exist_ok=True)
    frags = plan.data_fragments()
    (out / "fragments.txt").write_text("".join(p.hex() + "\n" for p in frags))
    group = plan.group()
    lines = [f"{session_gps + t:.1f} {group.fcnt} {group.frame(201, p).hex()}\n"
             for t, p in zip(plan.schedule(), frags)]
    (out / "frames.txt").write_text("# GPS time (s) to send · multicast FCnt · PHYPayload (class C, "
                                    f"{plan.freq_hz} Hz, DR{plan.dr})\n" + "".join(lines))
    uni = [f"{t.dev_eui} 200 {plan.setup_req(t).hex()}\n" for t in targets]
    uni += [f"{t.dev_eui} 201 {plan.frag_setup_req().hex()}\n" for t in targets]
    uni += [f"{t.dev_eui} 200 {plan.class_c_req(session_gps).hex()}\n" for t in targets]
    (out / "unicast.txt").write_text("# DevEUI · FPort · payload, in this order, class A (one per uplink's RX1)\n"
                                     + "".join(uni))
    written = ["fragments.txt", "frames.txt", "unicast.txt"]
    if bodies is not None:
        (out / "chirpstack.json").write_text(json.dumps(bodies, indent=1) + "\n")
        written.append("chirpstack.json")
    return written


def _bodies(plan, devs, chirpstack_app, chirpstack_profile, name):
    if not chirpstack_app:
        return None
    from ..exports import chirpstack_fuota as cs

    if not chirpstack_profile:
        raise UsageError("--chirpstack-application-id needs --chirpstack-device-profile-id as well",
                         hint="both are UUIDs from ChirpStack's web interface (application, device profile)")
    return cs.requests(plan, devs, application_id=chirpstack_app, device_profile_id=chirpstack_profile, name=name)


def _session_entry(n, wave, plan, devs, session_gps, where) -> dict:
    return {"n": n, "wave": wave, "devices": len(devs), "session_gps": session_gps, "timeout": plan.timeout,
            "nb_frag": plan.nb_frag, "fragments": plan.fragments, "fragment_size": plan.fragment_size,
            "mc_addr": f"{plan.mc_addr:08x}", "dir": where}


def start(*, version, kommune, waves, halt_at, seed, board, repo_dir, release_dir, from_version, base_manifest,
          dr, loss, session_in_s, out_dir, devices, chirpstack_app, chirpstack_profile, operator, db_url,
          wave_timeout_s=None, session_at=None):
    """Plan the deployment, write its folder with the first wave's session, and keep the rollout in the
    database (fleet.fuota.store); returns (plan, rollout, summary dict)."""
    if release_dir is None:
        raise UsageError("--via lorawan needs --release-dir: the signed release folder (fleet release build + sign)",
                         hint="the payload is built from it as fleet fuota payload does")
    if not board:
        raise UsageError("--via lorawan needs --board: one payload is for one board",
                         hint="e.g. --board ttgo_lora32_v21 (fleet boards list shows them)")
    if out_dir is None:
        raise UsageError("--via lorawan needs -o/--out DIR: the deployment folder to write",
                         hint="e.g. -o fuota-1.1.0 (a new or empty folder)")
    now_gps = fclock.gps_time(time.time())
    if session_at is not None and session_at <= now_gps:
        raise UsageError(f"--session-at {session_at} is not in the future (GPS time now: {now_gps})",
                         hint="give a later GPS time (the devices' TS003 clock), or --session-in")
    from ..fuota.store import FuotaStore

    kode = metadata.kommunekode(kommune)
    base = None
    if from_version:
        if not repo_dir:
            raise UsageError("--from needs --repo: the update repository holding that version's manifest",
                             hint="e.g. --from 1.0.0 --repo updates")
        base = base_from_repo(repo_dir, from_version, board, kode)
    elif base_manifest:
        base = Path(base_manifest).read_bytes()
    payload = build(release_dir, board=board, kommune=kommune, base_body=base)
    if payload.version != version:
        raise UsageError(f"{release_dir} holds release {payload.version}, not {version}",
                         hint="give the release folder of the version named by --release")
    store = FuotaStore.open(db_url)
    try:
        store.open_conflict(kode, board)
        targets, skipped = _devices(db_url, operator, kode, board, devices, from_version, version)
        plan = deploy.plan(payload.data, targets, dr=dr, loss=loss)
        seed = check_seed(seed) if seed else new_seed()
        ro = LorawanRollout.start(version=version, kommune=kode, dev_euis=[t.dev_eui for t in targets],
                                  waves=waves, halt_at=halt_at, seed=seed, group_id=plan.group_id)
        session_gps = session_at if session_at is not None else fclock.gps_time(time.time() + session_in_s)
        first = set(ro.session_devices())
        wave1 = [t for t in targets if t.dev_eui in first]
        name = f"bysans {version} {kode} {board} session 1"
        bodies = _bodies(plan, [t.dev_eui for t in wave1], chirpstack_app, chirpstack_profile, name)
        out = Path(out_dir)
        _folder_ok(out, "payload.bin")
        out.mkdir(parents=True, exist_ok=True)
        (out / "payload.bin").write_bytes(plan.payload)
        written = ["payload.bin", *write_session(out, plan, wave1, session_gps, bodies), "rollout.json"]
        for t in wave1:
            ro.devices[t.dev_eui].session = 1
        entry = _session_entry(1, 1, plan, wave1, session_gps, ".")
        view = store.start(ro, board=board, from_version=from_version, seed=seed,
                           payload_sha256=hashlib.sha256(plan.payload).hexdigest(), payload_bytes=len(plan.payload),
                           dr=plan.dr, loss=plan.loss, freq_hz=plan.freq_hz, folder=str(out), session=entry,
                           operator=operator, wave_timeout_s=wave_timeout_s, counter=payload.counter)
    finally:
        store.close()
    (out / "rollout.json").write_text(json.dumps(ro.progress(), indent=1) + "\n")
    summary = {"id": view["id"], "release": version, "from": from_version, "board": board, "kommune": kode,
               "seed": seed, "payload": payload.as_dict() | {"objects": len(payload.objects)},
               "plan": plan.as_dict(), "session": entry, "session_gps": session_gps,
               "skipped": [{"device": d, "reason": r} for d, r in skipped], "written": written}
    return plan, ro, summary


def next_session(*, kommune, rollout_id, folder, session_in_s, chirpstack_app, chirpstack_profile, operator,
                 db_url):
    """The next wave's session (`fleet rollout next --via lorawan`): for exactly the devices of the open waves
    that have none, a fresh multicast group and its files in FOLDER/session-N; returns a summary dict."""
    from ..fuota.store import FuotaStore
    from ..registry import Operator, Registry

    store = FuotaStore.open(db_url)
    try:
        due = store.session_due(kommune=kommune, rollout_id=rollout_id)
        view, devs, n = due["rollout"], due["devices"], due["n"]
        out = Path(folder or view["folder"])
        blob = out / "payload.bin"
        if not blob.is_file():
            raise UsageError(f"{blob} is missing: the session is planned from the deployment's payload",
                             hint=f"give the deployment folder with -o (started with -o {view['folder']})")
        data = blob.read_bytes()
        if hashlib.sha256(data).hexdigest() != view["payload"]["sha256"]:
            raise UsageError(f"{blob} is not the payload LoRaWAN rollout {view['id']} was started with (SHA-256 "
                             "differs)", hint="give that rollout's own deployment folder with -o")
        reg = Registry.open(db_url)
        try:
            op = Operator(operator, kommune=view["kommune"], role="kommune")
            keys = reg.app_keys(op, [d.upper() for d in devs], purpose="fuota deployment")
        finally:
            reg.close()
        targets = [deploy.Target(d, keys[d.upper()], board=view["board"], kommune=view["kommune"]) for d in devs]
        plan = deploy.plan(data, targets, dr=view["dr"], loss=view["loss"], freq_hz=view["freq_hz"])
        session_gps = fclock.gps_time(time.time() + session_in_s)
        name = f"bysans {view['version']} {view['kommune']} {view['board']} session {n}"
        bodies = _bodies(plan, devs, chirpstack_app, chirpstack_profile, name)
        sub = out / f"session-{n}"
        _folder_ok(sub, "unicast.txt")
        written = [f"session-{n}/{w}" for w in write_session(sub, plan, targets, session_gps, bodies)]
        entry = _session_entry(n, view["open_waves"], plan, targets, session_gps, f"session-{n}")
        after = store.record_session(view["id"], entry, devs, operator=operator)
    finally:
        store.close()
    return {"id": view["id"], "release": view["version"], "kommune": view["kommune"], "board": view["board"],
            "session": entry, "devices": devs, "plan": plan.as_dict(), "written": written,
            "state": after["state"], "open_waves": after["open_waves"]}


def _share(p) -> str:
    n = round(p["short_probability"] * p["trials"])
    return f"{n} ({n / p['trials']:.2%})"


def show(summary):
    p = summary["plan"]
    click.echo(f"FUOTA deployment of {summary['release']} to kommune {summary['kommune']} ({summary['board']}): "
               f"{p['devices']} devices, payload {p['payload_bytes']} bytes")
    click.echo(f"  DR{p['dr']}: {p['nb_frag']} fragments of {p['fragment_size']} bytes + {p['redundancy']} coded "
               f"for {p['loss']:.0%} loss (short of rank in {_share(p)} of {p['trials']} sampled loss patterns)")
    click.echo(f"  class C at {p['freq_hz']} Hz, {p['duty_cycle']:.0%} duty cycle: a fragment every "
               f"{p['interval_s']} s, {p['session_s']} s in all (SessionTimeOut {p['timeout']}: "
               f"{2 ** p['timeout']} s), group McAddr {p['group']['mc_addr']}")
    for s in summary["skipped"]:
        click.echo(f"  skipped {s['device']}: {s['reason']}")
    ses = summary["session"]
    click.echo(f"  LoRaWAN rollout {summary['id']}: session 1 for wave 1's {ses['devices']} devices "
               f"(fleet rollout next --via lorawan prepares the next wave's)")
    click.echo(f"  seed {summary['seed']}; wrote " + ", ".join(summary["written"]))


def show_next(summary):
    ses = summary["session"]
    click.echo(f"LoRaWAN rollout {summary['id']} ({summary['release']}, kommune {summary['kommune']}): session "
               f"{ses['n']} for wave {ses['wave']}'s {ses['devices']} devices, group McAddr {ses['mc_addr']}, "
               f"{ses['nb_frag']} + {ses['fragments'] - ses['nb_frag']} fragments")
    click.echo("  wrote " + ", ".join(summary["written"]))


def _fragments(d) -> str:
    if d["state"] not in ("fragments", "rebuilt") and not d["received"]:
        return ""
    of = f"/{d['nb_frag']}" if d["nb_frag"] else ""
    return f"fragments {d['received']}{of}" + (f", {d['missing']} missing" if d["missing"] else "")


def show_status(view, devices=False):
    c = view["counts"]
    click.echo(f"LoRaWAN rollout {view['id']}: {view['version']} to kommune {view['kommune']} ({view['board']}) - "
               f"{view['state']}, wave {view['open_waves']} of {len(view['waves'])} ({', '.join(view['waves'])}), "
               f"halts above {view['halt_at']} failed ({view['failed_in_open_waves']} of {view['in_open_waves']})")
    click.echo("  " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in c.items() if v and k != "total")
               + f" of {c['total']}")
    for w in view["per_wave"]:
        ses = ", ".join(str(n) for n in w["sessions"]) or "none yet"
        click.echo(f"  wave {w['wave']} ({w['share']}, {'open' if w['open'] else 'closed'}): {w['devices']} devices, "
                   f"session {ses}: " + (", ".join(f"{k.replace('_', ' ')} {v}" for k, v in w["counts"].items())
                                         or "-"))
    if view["waiting_for_session"]:
        click.echo(f"  {view['waiting_for_session']} devices of the open waves wait for their session: "
                   "fleet rollout next --via lorawan")
    if view["note"]:
        click.echo(f"  note: {view['note']}")
    if devices:
        for d in view.get("devices", []):
            extra = "  ".join(x for x in (f"session {d['session']}" if d["session"] else "", _fragments(d),
                                          d["reason"] or "") if x)
            click.echo(f"  {d['position']:>4}. {d['device']}  wave {d['wave']}  {d['state']:<14} {extra}".rstrip())
