"""What the HTTP rollouts (fleet.rollout.store, table `rollouts`) and the LoRaWAN ones (fleet.fuota.store,
table `fuota_rollouts`) ask of the store alike: which rollout a command means, and the audit entry of an
operator's change to one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from ..errors import RolloutNotFound
from ..registry.kommuner import lookup
from .models import AuditEntry


def pick(s, model, *, kommune=None, rollout_id=None, states=None, lock=False, what="rollout", hint=None):
    """The newest row of `model` (Rollout or FuotaRollout) with that id, kommune and state, each when given;
    locked for the transaction on PostgreSQL when `lock`. None found: RolloutNotFound saying what was asked."""
    q = select(model)
    if rollout_id is not None:
        q = q.where(model.id == rollout_id)
    if kommune is not None:
        q = q.where(model.kommune_kode == lookup(kommune).kode)
    if states:
        q = q.where(model.state.in_(states))
    q = q.order_by(model.id.desc())
    if lock and s.bind.dialect.name == "postgresql":
        q = q.with_for_update()
    row = s.scalars(q).first()
    if row is None:
        asked = f"{what} {rollout_id}" if rollout_id is not None else what
        where = f" for kommune {lookup(kommune).kode}" if kommune is not None else ""
        raise RolloutNotFound(f"no {asked}{where}" + (f" that is {' or '.join(states)}" if states else ""),
                              **({"hint": hint} if hint else {}))
    return row


def audit(s, operator: str, verb: str, row, changes: dict, at: datetime, note=None) -> None:
    """The audit entry of an operator's change to a rollout (`rollout.<verb>`), in the change's own
    transaction."""
    s.add(AuditEntry(at=at, operator=operator, action=f"rollout.{verb}", kommune_kode=row.kommune_kode,
                     dev_eui=None, changes=changes, note=note))
