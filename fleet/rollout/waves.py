"""Pure rollout logic: wave shares, which device is in which wave, and when a rollout moves on or halts."""

import hashlib
import math
import re

from ..errors import UsageError

TERMINAL = ("confirmed", "failed", "rolled_back")
FAILED = ("failed", "rolled_back")
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


def order(kommune: str, devices) -> list[str]:
    """Devices in rollout order: a stable shuffle (SHA-256 of kommune and DevEUI), so canaries are spread
    over sites rather than the first enrolled, and the same inputs give the same order."""
    return sorted(set(devices), key=lambda d: hashlib.sha256(f"{kommune}:{d}".encode()).digest())


def assign(kommune: str, devices, waves: list[int]) -> list[tuple[str, int]]:
    """[(device, wave index)] in rollout order: wave i holds the first ceil(N * share_i) devices (a first
    wave of at least one device)."""
    ordered = order(kommune, devices)
    n = len(ordered)
    bounds = [max(1, math.ceil(n * w / 1000)) if n else 0 for w in waves]
    out = []
    for pos, d in enumerate(ordered):
        out.append((d, next(i for i, b in enumerate(bounds) if pos < b)))
    return out


def failure_ratio(states_in_open_waves: list[str], forgiven: int = 0) -> float:
    if not states_in_open_waves:
        return 0.0
    failed = sum(1 for s in states_in_open_waves if s in FAILED) - forgiven
    return max(failed, 0) / len(states_in_open_waves)


def step(state: str, wave: int, n_waves: int, halt_at: int, members: list[tuple[int, str]],
         forgiven: int = 0) -> tuple[str, int]:
    """The rollout's next (state, open wave) from its members' (wave, state). Only a running rollout moves:
    it halts when the failures in its open waves exceed halt_at (per mille); when every device of the open
    waves is done (confirmed, failed, rolled back), the next wave opens; after the last, it is completed."""
    while state == "running":
        open_states = [s for w, s in members if w <= wave]
        if failure_ratio(open_states, forgiven) * 1000 > halt_at:
            return "halted", wave
        if any(s not in TERMINAL for s in open_states):
            return state, wave
        if wave + 1 >= n_waves:
            # with no device yet, every wave is open and it waits: devices that check in join its last wave
            return ("completed" if open_states else state), wave
        wave += 1
    return state, wave


def device_state(current: str, report: dict, manifest: str) -> tuple[str, str | None]:
    """A rollout member's state after a check-in `report` (the device's own words, docs/ota.md)."""
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
