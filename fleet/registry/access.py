"""Who is acting: an operator acts for one kommune, or across kommuner with the cross-kommune role.

The registry API takes an `Operator` on every call and enforces its scope there: a kommune's operator
neither sees nor changes another kommune's devices (they look absent: NotFound, not AccessDenied, so
DevEUIs of other kommuner do not leak), and may not enroll into another kommune (AccessDenied).
"""

from dataclasses import dataclass

from ..errors import AccessDenied, UsageError
from .kommuner import lookup

CROSS_KOMMUNE = "cross-kommune"
ROLES = ("kommune", CROSS_KOMMUNE)


@dataclass(frozen=True)
class Operator:
    """`name` is recorded in the audit log; `kommune` is a kommunekode ('0751') or None."""

    name: str
    kommune: str | None = None
    role: str = "kommune"

    def __post_init__(self):
        if not self.name or not self.name.strip():
            raise UsageError("an operator needs a name (--operator or FLEET_OPERATOR)")
        if self.role not in ROLES:
            raise UsageError(f"unknown role '{self.role}'", hint=f"roles: {', '.join(ROLES)}")
        if self.kommune is not None:
            object.__setattr__(self, "kommune", lookup(self.kommune).kode)
        elif self.role != CROSS_KOMMUNE:
            raise UsageError(f"operator '{self.name}' acts for no kommune",
                             hint="give --kommune K (or FLEET_KOMMUNE), e.g. --kommune 751 for Aarhus; "
                                  f"fleet admins use the {CROSS_KOMMUNE} role (FLEET_ROLE)")

    @property
    def cross_kommune(self) -> bool:
        return self.role == CROSS_KOMMUNE

    def may_act_for(self, kode: str) -> bool:
        return self.cross_kommune or kode == self.kommune

    def require(self, kode: str, what: str = "act") -> None:
        if not self.may_act_for(kode):
            raise AccessDenied(f"operator '{self.name}' acts for kommune {self.kommune} and may not {what} "
                               f"in kommune {kode}")

    def visible_kommuner(self, kommune=None) -> list[str] | None:
        """The kommunekoder this operator may see, narrowed to `kommune` if given; None means all."""
        if kommune is not None:
            kode = lookup(kommune).kode
            self.require(kode, "see devices")
            return [kode]
        return None if self.cross_kommune else [self.kommune]


SYSTEM = Operator("system", role=CROSS_KOMMUNE)  # ingest and other automatic writers
