"""`fleet rollout start --via lorawan`: a release as a FUOTA deployment (docs/formats/fuota.md, "Deployment").

Plans the multicast session (fleet.fuota.deploy) for the kommune's devices of one board, puts them in waves
(fleet.fuota.rollout), says the payload's size and the session's timing before anything is sent, and writes
the deployment folder a network server needs: the payload, its DataFragments, the multicast frames ready
for a gateway, each device's unicast set-up requests, ChirpStack v4's FuotaService bodies and the rollout's
per-device states. No key is written: McKey only leaves in the frames and, encrypted, in McGroupSetupReq.
"""

from __future__ import annotations

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


def start(*, version, kommune, waves, halt_at, seed, board, repo_dir, release_dir, from_version, base_manifest,
          dr, loss, session_in_s, out_dir, devices, chirpstack_app, chirpstack_profile, operator, db_url):
    """Plan and write the deployment; returns (plan, rollout, summary dict)."""
    if release_dir is None:
        raise UsageError("--via lorawan needs --release-dir: the signed release folder (fleet release build + sign)",
                         hint="the payload is built from it as fleet fuota payload does")
    if not board:
        raise UsageError("--via lorawan needs --board: one payload is for one board",
                         hint="e.g. --board ttgo_lora32_v21 (fleet boards list shows them)")
    if out_dir is None:
        raise UsageError("--via lorawan needs -o/--out DIR: the deployment folder to write",
                         hint="e.g. -o fuota-1.1.0 (a new or empty folder)")
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
    targets, skipped = _devices(db_url, operator, kode, board, devices, from_version, version)
    plan = deploy.plan(payload.data, targets, dr=dr, loss=loss)
    seed = check_seed(seed) if seed else new_seed()
    ro = LorawanRollout.start(version=version, kommune=kode, dev_euis=[t.dev_eui for t in targets], waves=waves,
                              halt_at=halt_at, seed=seed, group_id=plan.group_id)
    session_gps = fclock.gps_time(time.time() + session_in_s)
    bodies = None
    if chirpstack_app:  # before anything is written: a plan ChirpStack cannot carry changes nothing
        from ..exports import chirpstack_fuota as cs

        if not chirpstack_profile:
            raise UsageError("--chirpstack-application-id needs --chirpstack-device-profile-id as well",
                             hint="both are UUIDs from ChirpStack's web interface (application, device profile)")
        bodies = cs.requests(plan, [t.dev_eui for t in targets], application_id=chirpstack_app,
                             device_profile_id=chirpstack_profile, name=f"bysans {version} {kode} {board}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "payload.bin").write_bytes(plan.payload)
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
    summary = {"release": version, "from": from_version, "board": board, "kommune": kode, "seed": seed,
               "payload": payload.as_dict() | {"objects": len(payload.objects)}, "plan": plan.as_dict(),
               "session_gps": session_gps, "skipped": [{"device": d, "reason": r} for d, r in skipped],
               "written": ["payload.bin", "fragments.txt", "frames.txt", "unicast.txt", "rollout.json"]}
    if bodies is not None:
        (out / "chirpstack.json").write_text(json.dumps(bodies, indent=1) + "\n")
        summary["written"].append("chirpstack.json")
    (out / "rollout.json").write_text(json.dumps(ro.progress(), indent=1) + "\n")
    return plan, ro, summary


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
    click.echo(f"  seed {summary['seed']}; wrote " + ", ".join(summary["written"]))
