"""A FUOTA deployment run as a rollout (`fleet rollout start --via lorawan`): the plan's devices in waves
(fleet.rollout.waves, the same order and shares as the HTTP route), a halt threshold, and each device's
FUOTA state, moved on by what the network server hears from it:

    pending -> clock_synced -> group_set_up -> session_set_up -> fragments -> rebuilt -> installed -> confirmed
    (and failed / rolled_back from anywhere; silent: not done within the wave timeout)

`observe(dev_eui, fport, payload)` reads an uplink's FUOTA answers (FPorts 200-202); `installed()`,
`confirmed()`, `report()` (an OTA check-in) and `reported()` (a LoRaWAN update report, FPort 222;
`refused_unnamed()` for a refusal without a counter) take what the device reports once it has the block;
`expire()` applies the wave timeout. Each wave gets its own multicast session: `session_devices()` are the
devices of the open waves that have none yet (fleet.fuota.store prepares it). Pure: no network, no printing,
no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import LoRaWANFrameError, UsageError
from ..rollout import waves as W
from . import clock as fclock
from . import multicast as fmc
from .spec import SPEC as FRAG

STATES = ("pending", "clock_synced", "group_set_up", "session_set_up", "fragments", "rebuilt", "installed",
          "confirmed", "failed", "rolled_back", "silent")
_RANK = {s: i for i, s in enumerate(STATES[:8])}
DONE = ("confirmed", "failed", "rolled_back", "silent")
ROLLOUT_STATES = ("running", "paused", "halted", "done", "aborted")
# a device silent after it had the whole block counts against the halt threshold (as the HTTP route's
# "was installed"): what a release that breaks a device's uplink looks like; one silent earlier missed the
# session (out of reach, asleep too long) and does not
SILENT_FAILED = ("was rebuilt", "was installed")
# the states in which a device holds this rollout's block (all its fragments or some): an update report that
# refuses a block without naming its release (counter 0) is about this rollout's only then
HOLDS_BLOCK = ("fragments", "rebuilt")


def is_failure(state: str, reason: str | None = None) -> bool:
    return state in ("failed", "rolled_back") or (state == "silent" and reason in SILENT_FAILED)


@dataclass
class DeviceState:
    dev_eui: str
    wave: int
    state: str = "pending"
    received: int = 0          # fragments counted by its last FragSessionStatusAns
    missing: int | None = None
    reason: str | None = None
    session: int | None = None  # the multicast session (1, 2, ...) prepared for it; None: none yet


@dataclass
class LorawanRollout:
    version: str
    kommune: str
    waves: list                 # cumulative shares, per mille (fleet.rollout.waves.parse_waves)
    halt_at: int                # per mille of the devices in open waves
    devices: dict = field(default_factory=dict)
    open_waves: int = 1
    state: str = "running"      # running | halted | done
    group_id: int = 0
    frag_index: int = 0
    forgiven: int = 0           # failures an operator saw before resuming a halted rollout
    note: str | None = None

    @classmethod
    def start(cls, *, version: str, kommune: str, dev_euis, waves: list[int], halt_at: int, seed: str,
              group_id: int = 0, frag_index: int = 0) -> "LorawanRollout":
        devs = [d.lower() for d in dev_euis]
        if not devs:
            raise UsageError("no devices to update", hint="enrol the kommune's LoRaWAN devices first (fleet devices)")
        ro = cls(version=version, kommune=kommune, waves=list(waves), halt_at=halt_at, group_id=group_id,
                 frag_index=frag_index)
        for d, w in W.assign(kommune, devs, waves, seed=seed):
            ro.devices[d] = DeviceState(d, w)
        return ro

    # ---- what the devices say --------------------------------------------------------------------------
    def _dev(self, dev_eui) -> DeviceState:
        key = dev_eui.hex() if isinstance(dev_eui, (bytes, bytearray)) else str(dev_eui).lower()
        if key not in self.devices:
            raise UsageError(f"device {key} is not in this rollout")
        return self.devices[key]

    def _move(self, d: DeviceState, state: str, reason: str | None = None):
        if d.state == "silent":  # heard again: on its way, from where it was
            d.state, d.reason = (d.reason or "was pending")[4:], None
        if d.state in DONE:
            return
        if state in ("failed", "rolled_back") or _RANK[state] > _RANK.get(d.state, -1):
            d.state, d.reason = state, reason
        self._step()

    def observe(self, dev_eui, fport: int, payload: bytes, *, session_over: bool = False):
        """One uplink's FUOTA answers. `session_over`: the class C window has closed, so a status answer
        that still misses fragments fails the device."""
        d = self._dev(dev_eui)
        try:
            if fport == fclock.PORT:
                # an AppTimeReq without AnsRequired: the device holds itself synced
                cmds = fclock.parse_uplink(payload)
                if any(c["name"] == "AppTimeReq" and not c["ans_required"] for c in cmds):
                    self._move(d, "clock_synced")
            elif fport == fmc.PORT:
                for c in fmc.parse_uplink(payload):
                    if c.get("gid", self.group_id) != self.group_id:
                        continue
                    if c["name"] == "McGroupSetupAns":
                        if c["id_error"]:
                            self._move(d, "failed", "group set-up refused")
                        else:
                            self._move(d, "group_set_up")
                    elif c["name"] == "McClassCSessionAns":
                        if c["errors"]:
                            self._move(d, "failed", "class C session refused: " + ", ".join(c["errors"]))
                        else:
                            self._move(d, "session_set_up")
            elif fport == FRAG.FPORT:
                self._frag(d, bytes(payload), session_over)
        except LoRaWANFrameError as e:
            d.reason = f"unreadable answer: {e}"

    def _frag(self, d: DeviceState, p: bytes, session_over: bool):
        i = 0
        while i < len(p):
            cid = p[i]
            if cid == FRAG.SETUP_CID and i + 1 < len(p):
                bits = p[i + 1] & 0x0F
                if bits:
                    self._move(d, "failed", f"fragmentation session refused (status bits {bits:#x})")
                i += 2
            elif cid == FRAG.STATUS_CID and i + 1 + FRAG.STATUS_ANS_SIZE <= len(p):
                st = FRAG.unpack_status_ans(p[i + 1:i + 1 + FRAG.STATUS_ANS_SIZE])
                d.received, d.missing = st["received"], st["missing"]
                if st["not_enough_matrix_memory"]:
                    self._move(d, "failed", "not enough matrix memory")
                elif st["missing"] == 0:
                    self._move(d, "rebuilt")
                elif session_over:
                    self._move(d, "failed", f"{st['missing']} fragments missing after the session")
                else:
                    self._move(d, "fragments")
                i += 1 + FRAG.STATUS_ANS_SIZE
            elif cid in (FRAG.PACKAGE_VERSION_CID, FRAG.DELETE_CID):
                i += 3 if cid == FRAG.PACKAGE_VERSION_CID else 2
            else:
                return

    def clock_synced(self, dev_eui):
        """The network server answered the device's AppTimeReq (its AppTimeAns went out)."""
        self._move(self._dev(dev_eui), "clock_synced")

    def installed(self, dev_eui, outcome: dict):
        """The installer's outcome (bysans.fuota.install: {"state": installed|failed|error, ...})."""
        d = self._dev(dev_eui)
        if outcome.get("state") == "installed":
            self._move(d, "installed")
        else:
            self._move(d, "failed", f"{outcome.get('reason') or outcome.get('state')}: {outcome.get('detail', '')}")

    def report(self, dev_eui, *, version: str | None, state: str | None = None, reason: str | None = None):
        """What the device says of itself after an update (an OTA check-in's version, state and reason,
        docs/ota.md). It runs the release: confirmed. Otherwise only a device that had the whole block moves:
        installed, failed (its installer refused the block) or rolled back (it came back on another version)."""
        d = self._dev(dev_eui)
        was = d.reason[4:] if d.state == "silent" and d.reason else d.state  # silent: what it was doing
        if version == self.version and state not in ("downloading", "installed"):
            self._move(d, "confirmed")
        elif was not in ("rebuilt", "installed"):
            return
        elif state == "installed":
            self._move(d, "installed")
        elif state in ("failed", "rolled_back"):
            self._move(d, state, f"{reason or state} (running {version or '?'})")
        elif was == "installed" and version and version != self.version:
            self._move(d, "rolled_back", f"runs {version}")

    def reported(self, dev_eui, event: str, reason: str | None = None):
        """An update report of this rollout's release (FPort 222, docs/formats/update-report.md; the caller
        checked its counter): the node installed it (its new slot on trial), confirmed it, rolled it back or
        refused it. From any earlier state: a node that installed the release had the whole block, even when
        its last status answer was lost."""
        d = self._dev(dev_eui)
        if event in ("installed", "confirmed"):
            self._move(d, event)
        elif event == "rolled_back":
            self._move(d, "rolled_back", f"rolled back: {reason or 'reason not stated'} (update report)")
        elif event == "refused":
            self._move(d, "failed", f"refused: {reason or 'reason not stated'} (update report)")

    def refused_unnamed(self, dev_eui, reason: str | None = None) -> bool:
        """An update report `refused` without a counter (0: the node could not name the release): a block that
        failed its checks before its manifest was read (a CRC-32 error: damaged in transit), or one the node
        gave up on after its install tries. It fails the device only while the device holds this rollout's
        block (`fragments` or `rebuilt`, or silent since then): then the block refused is this rollout's. In
        any other state it is another block's (the repeats of an earlier release's refusal, or a block given
        up before this rollout's session): nothing moves. Returns whether it applied."""
        d = self._dev(dev_eui)
        was = d.reason[4:] if d.state == "silent" and d.reason else d.state  # silent: what it was doing
        if was not in HOLDS_BLOCK:
            return False
        why = ("the block failed its checks before its manifest was read" if reason
               else "the node gave up on the block, e.g. after its install tries")
        self._move(d, "failed", f"refused: {reason or 'reason not stated'} (update report, no counter: {why})")
        return True

    def confirmed(self, dev_eui, version: str):
        """The device runs `version` after its first boot: confirmed, or rolled back to the old one."""
        d = self._dev(dev_eui)
        self._move(d, "confirmed" if version == self.version else "rolled_back",
                   None if version == self.version else f"runs {version}")

    # ---- waves and the halt -------------------------------------------------------------------------------
    def in_open_waves(self) -> list[DeviceState]:
        return [d for d in self.devices.values() if d.wave < self.open_waves]

    def expire(self):
        """The open waves' timeout has passed: their devices not done are silent ("was <state>")."""
        if self.state != "running":
            return 0
        late = [d for d in self.in_open_waves() if d.state not in DONE]
        for d in late:
            d.state, d.reason = "silent", f"was {d.state}"
        self._step()
        return len(late)

    def failures(self) -> int:
        return sum(is_failure(d.state, d.reason) for d in self.in_open_waves())

    def _step(self):
        if self.state != "running":
            return
        open_ = self.in_open_waves()
        failed = self.failures() - self.forgiven
        if failed > 0 and failed * 1000 > self.halt_at * len(open_):
            self.state = "halted"
            self.note = (f"halted by itself: {failed + self.forgiven} of {len(open_)} devices failed "
                         f"(threshold {self.halt_at / 10:g}%)")
            return
        while all(d.state in DONE for d in self.in_open_waves()):
            if self.open_waves >= len(self.waves):
                self.state = "done"
                return
            self.open_waves += 1

    def wave_devices(self) -> list[str]:
        """The devices of the open waves that are not done: the ones the next session is for."""
        return [d.dev_eui for d in self.in_open_waves() if d.state not in DONE] if self.state == "running" else []

    def session_devices(self) -> list[str]:
        """The devices of the open waves that are not done and have no session yet: the next session's."""
        return [d for d in self.wave_devices() if self.devices[d].session is None]

    def resume(self):
        """A paused or halted rollout runs again; the failures so far are forgiven (the operator saw them)."""
        if self.state == "halted":
            self.forgiven = self.failures()
        self.state, self.note = "running", None
        self._step()

    def progress(self) -> dict:
        counts = {s: 0 for s in STATES}
        for d in self.devices.values():
            counts[d.state] += 1
        total = len(self.devices)
        return {"version": self.version, "kommune": self.kommune, "state": self.state,
                "open_waves": self.open_waves, "waves": [f"{w / 10:g}%" for w in self.waves],
                "halt_at": f"{self.halt_at / 10:g}%", "counts": counts, "total": total, "note": self.note,
                "done_pct": math.floor(100 * sum(counts[s] for s in DONE) / total) if total else 100,
                "devices": [vars(d) for d in self.devices.values()]}
