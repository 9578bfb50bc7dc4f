"""API tokens for `fleet serve`: one per kommune (or cross-kommune for a fleet admin).

A token is `bys_<id>_<secret>`: `id` (8 hex digits) is public and names the token in lists, the audit log
and revocation; `secret` is 32 random bytes (base64url). Only SHA-256 of the whole token is stored — the
token has 256 bits of entropy, so a plain hash is as good as a slow one — and it is compared in constant
time. `create` returns the token once; nothing can show it again.
"""

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import select, update

from ..errors import NotFound, TokenInvalid, UsageError
from ..store import aware
from ..store.models import ApiToken, AuditEntry
from .access import CROSS_KOMMUNE, Operator
from .kommuner import lookup

_FORMAT = re.compile(r"^bys_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class TokenInfo:
    token_id: str
    kommune_kode: str | None
    role: str
    name: str
    created_by: str
    created_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    def to_dict(self) -> dict:
        return {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in self.__dict__.items()}


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _info(t: ApiToken) -> TokenInfo:
    return TokenInfo(t.token_id, t.kommune_kode, t.role, t.name, t.created_by, aware(t.created_at),
                     aware(t.revoked_at), aware(t.last_used_at))


def create_token(registry, operator: Operator, *, kommune=None, cross_kommune: bool = False,
                 name: str | None = None) -> tuple[str, TokenInfo]:
    """(the token, its info). A kommune operator creates tokens for its own kommune only; a cross-kommune
    token needs the cross-kommune role. Audited without the secret."""
    if cross_kommune:
        if not operator.cross_kommune:
            raise UsageError("only a fleet admin (role cross-kommune) may create a cross-kommune token")
        kode, role = None, CROSS_KOMMUNE
    else:
        if kommune is None:
            raise UsageError("a token is for one kommune: give --kommune K, e.g. --kommune 751")
        kode, role = lookup(kommune).kode, "kommune"
        operator.require(kode, "create tokens")
    token_id = secrets.token_hex(4)
    token = f"bys_{token_id}_{secrets.token_urlsafe(32)}"
    name = (name or f"{'kommune ' + kode if kode else 'fleet admin'} token").strip()[:80]
    now = datetime.now(timezone.utc)
    with registry.db.write() as s:
        row = ApiToken(token_id=token_id, token_hash=_hash(token), kommune_kode=kode, role=role, name=name,
                       created_by=operator.name, created_at=now)
        s.add(row)
        s.add(AuditEntry(operator=operator.name, action="token.create", kommune_kode=kode,
                         changes={"token_id": [None, token_id], "role": [None, role], "name": [None, name]}))
        s.flush()
        info = _info(row)
    return token, info


def list_tokens(registry, operator: Operator) -> list[TokenInfo]:
    scope = operator.visible_kommuner()
    q = select(ApiToken).order_by(ApiToken.id)
    if scope is not None:
        q = q.where(ApiToken.kommune_kode.in_(scope))
    with registry.db.read() as s:
        return [_info(t) for t in s.scalars(q)]


def revoke_token(registry, operator: Operator, token_id: str) -> TokenInfo:
    with registry.db.write() as s:
        t = s.scalar(select(ApiToken).where(ApiToken.token_id == str(token_id).strip().lower()))
        if t is None or not (operator.cross_kommune or t.kommune_kode == operator.kommune):
            raise NotFound(f"no token {token_id}", hint="'fleet tokens list' lists the tokens you may see")
        if t.revoked_at is None:
            t.revoked_at = datetime.now(timezone.utc)
            s.add(AuditEntry(operator=operator.name, action="token.revoke", kommune_kode=t.kommune_kode,
                             changes={"token_id": [t.token_id, None]}))
        s.flush()
        return _info(t)


def operator_for_token(registry, token: str | None, *, touch: bool = True) -> Operator:
    """The Operator a bearer token acts as ("token:<id>", its kommune), or TokenInvalid. Never echoes it."""
    if not token:
        raise TokenInvalid("this needs an API token")
    m = _FORMAT.match(token.strip())
    if not m:
        raise TokenInvalid("the API token is malformed")
    with registry.db.read() as s:
        t = s.scalar(select(ApiToken).where(ApiToken.token_id == m.group(1)))
    if t is None or not hmac.compare_digest(t.token_hash, _hash(token.strip())):
        raise TokenInvalid("the API token is not known")
    if t.revoked_at is not None:
        raise TokenInvalid(f"the API token {t.token_id} was revoked")
    if touch:
        now = datetime.now(timezone.utc)
        last = aware(t.last_used_at)
        if last is None or (now - last).total_seconds() > 60:  # not a write per request
            with registry.db.write() as s:
                s.execute(update(ApiToken).where(ApiToken.id == t.id).values(last_used_at=now))
    return Operator(f"token:{t.token_id}", kommune=t.kommune_kode, role=t.role)
