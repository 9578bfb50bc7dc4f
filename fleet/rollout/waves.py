"""Pure rollout logic: wave shares, which device is in which wave, and when a rollout moves on or halts."""

import hashlib
import math
import re
import secrets
from datetime import datetime

from ..errors import UsageError

TERMINAL = ("confirmed", "failed", "rolled_back", "silent")  # done, for opening the next wave
FAILED = ("failed", "rolled_back")
WAITING = ("pending", "downloading", "installed")  # what may turn silent
# silent reasons that count against the halt threshold ("was soaking": confirmed, then not heard from while
# its rollout's soak was judging its diagnostics)
SILENT_FAILED = ("was downloading", "was installed", "was soaking")
_SEED = re.compile(r"^[0-9A-Za-z_.:-]{1,32}$")
_PCT = re.compile(r"^\s*(\d+(?:\.\d)?)\s*%?\s*$")


def parse_percent(text: str, what: str = "a share") -> int:
    """'10%' -> 100 (per mille). One decimal at most ('2.5%')."""
    m = _PCT.match(str(text))
    if not m:
        raise UsageError(f"'{text}' is not {what} in percent", hint="e.g. 10% or 2.5%")
    pm = round(float(m.group(1)) * 10)
    if not 0 <= pm <= 1000:
        raise UsageError(f"'{text}' is not between 0% and 100%")
    return pm


def parse_waves(text: str) -> list[int]:
    """'5%,25%,100%' -> [50, 250, 1000]: cumulative shares, increasing, the last 100%."""
    waves = [parse_percent(p, "a wave") for p in str(text).split(",") if p.strip()]
    if not waves:
        raise UsageError("--waves needs at least one share", hint="e.g. --waves 5%,25%,100%")
    if any(w <= 0 for w in waves) or any(b <= a for a, b in zip(waves, waves[1:])):
        raise UsageError(f"waves {text} must grow (each a cumulative share above the one before)",
                         hint="e.g. --waves 5%,25%,100%")
    if waves[-1] != 1000:
        raise UsageError(f"the last wave of {text} must be 100%", hint="e.g. --waves 5%,25%,100%")
    return waves


def new_seed() -> str:
    """A fresh seed for a rollout's device order (8 hex digits)."""
    return secrets.token_hex(4)


def check_seed(seed: str) -> str:
    if not isinstance(seed, str) or not _SEED.match(seed):
        raise UsageError(f"'{seed}' is not a rollout seed", hint="1-32 of A-Z a-z 0-9 _ . : -, e.g. --seed 1.4.0-a")
    return seed


def order(kommune: str, devices, *, seed: str) -> list[str]:
    """Devices in rollout order: a shuffle by SHA-256 of seed, kommune and DevEUI. The same seed and devices
    give the same order; each rollout has its own seed, so the canaries differ from one rollout to the next
    and are spread over sites rather than the first enrolled."""
    return sorted(set(devices), key=lambda d: hashlib.sha256(f"{seed}:{kommune}:{d}".encode()).digest())


def assign(kommune: str, devices, waves: list[int], *, seed: str) -> list[tuple[str, int]]:
    """[(device, wave index)] in rollout order: wave i holds the first ceil(N * share_i) devices (a first
    wave of at least one device)."""
    ordered = order(kommune, devices, seed=seed)
    n = len(ordered)
    bounds = [max(1, math.ceil(n * w / 1000)) if n else 0 for w in waves]
    out = []
    for pos, d in enumerate(ordered):
        out.append((d, next(i for i, b in enumerate(bounds) if pos < b)))
    return out


def is_failure(state: str, reason: str | None = None) -> bool:
    """Failed or rolled back; or silent after it had started to take the release (it downloaded or
    installed, then was not heard from again: what a release that breaks a device's uplink looks like)."""
    return state in FAILED or (state == "silent" and reason in SILENT_FAILED)


def overdue(seen_at: datetime | None, wave_opened_at: datetime, timeout_s: int, now: datetime) -> bool:
    """A member of an open wave is silent when neither its wave's opening nor its last check-in is within
    the timeout."""
    last = max(wave_opened_at, seen_at) if seen_at is not None else wave_opened_at
    return (now - last).total_seconds() >= timeout_s


def _member(m) -> tuple[int, str, str | None]:
    return (m[0], m[1], m[2] if len(m) > 2 else None)


def failure_ratio(states_in_open_waves: list, forgiven: int = 0) -> float:
    """Share of failures (is_failure) among the open waves' members: states, or (state, reason) pairs."""
    if not states_in_open_waves:
        return 0.0
    failed = sum(1 for s in states_in_open_waves
                 if (is_failure(*s) if isinstance(s, tuple) else is_failure(s))) - forgiven
    return max(failed, 0) / len(states_in_open_waves)


def step(state: str, wave: int, n_waves: int, halt_at: int, members: list[tuple], forgiven: int = 0
         ) -> tuple[str, int]:
    """The rollout's next (state, open wave) from its members' (wave, state[, reason]). Only a running
    rollout moves: it halts when the failures in its open waves exceed halt_at (per mille); when every
    device of the open waves is done (confirmed, failed, rolled back, silent), the next wave opens; after the
    last, it is completed."""
    members = [_member(m) for m in members]
    while state == "running":
        open_states = [(s, r) for w, s, r in members if w <= wave]
        if failure_ratio(open_states, forgiven) * 1000 > halt_at:
            return "halted", wave
        if any(s not in TERMINAL for s, _ in open_states):
            return state, wave
        if wave + 1 >= n_waves:
            # with no device yet, every wave is open and it waits: devices that check in join its last wave
            return ("completed" if open_states else state), wave
        wave += 1
    return state, wave


def device_state(current: str, report: dict, manifest: str) -> tuple[str, str | None]:
    """A rollout member's state after a check-in `report` (the device's own words, docs/ota.md). A silent
    device that is heard again counts as pending until its report says more."""
    if current == "silent":
        current = "pending"
    reason = report.get("reason")
    if report.get("release") == manifest and report.get("state") not in ("downloading", "installed"):
        return "confirmed", None
    if report.get("target") != manifest:
        return current, None
    st = report.get("state")
    if st in ("downloading", "installed", "failed", "rolled_back"):
        return st, reason
    if st == "error":  # the repository could not be reached: still on its way, with the reason
        return ("downloading" if current == "pending" else current), reason
    return current, reason
