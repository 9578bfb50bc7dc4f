"""Settings commands in the registry's database (table settings_commands, migration 0011_settings_commands).

    store = SettingsStore(registry)
    cmds = store.queue(operator, devices, {"interval_s": 900})   # one command per device, audited
    store.record_acks([uplink, ...])                              # the node's answers (ingest calls this)
    store.show(operator, dev_eui)                                 # desired vs acknowledged

A command gets the device's next seq (1, 2, ...) in the transaction that records it and its audit entry
("settings.set", the operator's name, each key's old desired value and the new). The node's acknowledgement
marks it applied or refused (audit "settings.applied" / "settings.refused" by the system); a second answer
for a command already answered (a duplicate delivery, a replayed downlink refused as stale) changes
nothing. What the command carries to the network server is built by the caller (fleet.settings.routes).
"""

from collections.abc import Iterable, Sequence
from datetime import datetime, timezone

from sqlalchemy import func, select

from ..errors import MalformedUplink, UsageError
from ..registry.access import SYSTEM, Operator
from ..store import aware
from ..store.models import AuditEntry, SettingsCommand
from . import spec

ACTIVE = ("queued", "applied")  # what counts towards the desired settings


def _fold(cmds, states) -> dict:
    out: dict = {}
    for c in sorted(cmds, key=lambda c: c.seq):
        if c.state in states:
            out.update(c.settings)
    return out


def command_dict(c: SettingsCommand) -> dict:
    return {"dev_eui": c.dev_eui, "seq": c.seq, "settings": dict(c.settings), "state": c.state, "result": c.result,
            "operator": c.operator, "created_at": _iso(c.created_at), "acked_at": _iso(c.acked_at)}


def _iso(t):
    return aware(t).isoformat() if t is not None else None


class SettingsStore:
    def __init__(self, registry):
        self.registry = registry
        self.db = registry.db

    def queue(self, operator: Operator, devices: Sequence, values: dict[str, int], *,
              note: str | None = None) -> list[dict]:
        """One command per device (DeviceRecords the operator may see), each with its seq and frame, in ONE
        transaction with their audit entries. Values are checked again here."""
        if not devices:
            raise UsageError("no devices to set", hint="'fleet devices list' shows what you may see")
        values = {k: spec.check_value(k, v) for k, v in values.items()}
        if not values:
            raise UsageError("no setting given")
        for d in devices:
            wrong = [k for k in values if k in spec.WASTE_ONLY and d.kind != "waste"]
            if wrong:
                raise UsageError(f"{', '.join(wrong)} applies to waste nodes; {d.dev_eui} is an {d.kind} node",
                                 hint="narrow the devices (--device, --site) or leave the setting out")
        seq_max = spec.load_spec().SEQ_MAX
        now = datetime.now(timezone.utc)
        out = []
        with self.db.write() as s:
            for d in devices:
                prev = list(s.scalars(select(SettingsCommand).where(SettingsCommand.dev_eui == d.dev_eui)))
                seq = max((c.seq for c in prev), default=0) + 1
                if seq > seq_max:
                    raise UsageError(f"{d.dev_eui} has used all {seq_max} settings sequence numbers",
                                     hint="re-enroll the device (a new one starts at 1)")
                desired = _fold(prev, ACTIVE)
                c = SettingsCommand(dev_eui=d.dev_eui, kommune_kode=d.kommune_kode, seq=seq, settings=values,
                                    state="queued", operator=operator.name, created_at=now)
                s.add(c)
                s.add(AuditEntry(at=now, operator=operator.name, action="settings.set", kommune_kode=d.kommune_kode,
                                 dev_eui=d.dev_eui, changes={k: [desired.get(k), v] for k, v in values.items()},
                                 note=f"seq {seq}: {note}" if note else f"seq {seq}"))
                rec = {"dev_eui": d.dev_eui, "seq": seq, "settings": dict(values), "state": "queued",
                       "fport": spec.fport(), "payload_hex": spec.encode_command(seq, values).hex()}
                out.append(rec)
        return out

    def record_acks(self, uplinks: Iterable, *, operator: Operator = SYSTEM) -> dict:
        """Marks commands from acknowledgement uplinks (fleet.telemetry.Uplink on the settings FPort):
        {"applied": n, "refused": n, "unchanged": n, "unknown": n, "malformed": n}. `operator` scopes
        which devices' commands it may mark (a kommune's ingest token: its own)."""
        scope = operator.visible_kommuner()
        counts = {"applied": 0, "refused": 0, "unchanged": 0, "unknown": 0, "malformed": 0}
        entries = []
        for up in uplinks:
            try:
                entries += [(up.dev_eui.upper(), seq, result, up.received_at)
                            for seq, result in spec.decode_ack(up.payload)]
            except MalformedUplink:
                counts["malformed"] += 1
        if not entries:
            return counts
        with self.db.write() as s:
            for eui, seq, result, at in entries:
                c = s.scalar(select(SettingsCommand).where(SettingsCommand.dev_eui == eui, SettingsCommand.seq == seq))
                if c is None or (scope is not None and c.kommune_kode not in scope):
                    counts["unknown"] += 1
                    continue
                if c.state != "queued":
                    counts["unchanged"] += 1
                    continue
                c.state = "applied" if result == "applied" else "refused"
                c.result = result
                c.acked_at = at
                counts[c.state] += 1
                s.add(AuditEntry(at=datetime.now(timezone.utc), operator=SYSTEM.name, action=f"settings.{c.state}",
                                 kommune_kode=c.kommune_kode, dev_eui=eui,
                                 changes={k: [None, v] for k, v in c.settings.items()} if c.state == "applied" else {},
                                 note=f"seq {seq}: {result} (the node's acknowledgement)"))
        return counts

    def show(self, operator: Operator, dev_eui: str) -> dict:
        """The device's desired settings (every command not refused, in seq order), the acknowledged ones
        (the applied commands), which keys still wait, and its commands, newest first."""
        d = self.registry.get_device(operator, dev_eui)  # NotFound outside the operator's scope
        with self.db.read() as s:
            cmds = list(s.scalars(select(SettingsCommand).where(SettingsCommand.dev_eui == d.dev_eui)))
            s.expunge_all()
        desired, acked = _fold(cmds, ACTIVE), _fold(cmds, ("applied",))
        return {"dev_eui": d.dev_eui, "kind": d.kind, "desired": desired, "acknowledged": acked,
                "waiting": sorted(k for k in desired if acked.get(k) != desired[k]),
                "commands": [command_dict(c) for c in sorted(cmds, key=lambda c: -c.seq)]}

    def last_seq(self, dev_eui: str) -> int:
        with self.db.read() as s:
            return s.scalar(select(func.max(SettingsCommand.seq)).where(SettingsCommand.dev_eui == dev_eui)) or 0
