"""WiFi networks in the registry: per kommune, or per site of a kommune, their passwords sealed like AppKeys.

    reg.add_wifi_network(op, kommune="751", ssid="skole-iot", password="...", site="Skovvangskolen")
    reg.list_wifi_networks(op)                      # WifiRecords: never a password
    reg.wifi_for(op, "0751", "Skovvangskolen", purpose="enroll", dev_eui=...)  # what a board is given

A device is given the networks of its own site first (the site compared without regard to case or repeated
spaces), then its kommune's (site ''), at most MAX_NETWORKS, each group in the order it was added. WPA2-
Personal (8 to 63 characters) or open (no password); MicroPython's ESP32 port has no WPA2-Enterprise.

The password is sealed with the registry key (sealing.py), bound to its kommune, site and SSID, and comes
out only through wifi_for(), which audits each read. Nothing here puts a password in a record, a repr, an
audit entry or an error.
"""

from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from ..errors import Conflict, NotFound, UsageError
from ..store import aware
from ..store.models import AuditEntry, WifiNetwork
from .access import Operator
from .kommuner import lookup
from .sealing import SEALED_EMPTY

MAX_NETWORKS = 4  # what a board's /config/wifi.json holds (the firmware tries them in order)
SSID_MAX_BYTES = 32
PASSWORD_MIN, PASSWORD_MAX = 8, 63


@dataclass(frozen=True)
class WifiRecord:
    """A stored network, as shown: `open` says whether it has no password; the password itself never."""

    kommune_kode: str
    site: str           # '' = every site of the kommune
    ssid: str
    open: bool
    created_by: str
    created_at: datetime
    updated_at: datetime

    def to_dict(self) -> dict:
        return {"kommune": self.kommune_kode, "site": self.site or None, "ssid": self.ssid,
                "security": "open" if self.open else "wpa2-personal", "created_by": self.created_by,
                "created_at": self.created_at.isoformat(), "updated_at": self.updated_at.isoformat()}


def check_network(ssid, password) -> tuple[str, str]:
    """(ssid, password) as stored, or UsageError naming the SSID (never the password)."""
    if not isinstance(ssid, str) or not 1 <= len(ssid.encode()) <= SSID_MAX_BYTES:
        raise UsageError(f"a WiFi SSID is 1 to {SSID_MAX_BYTES} bytes")
    password = password or ""
    if not isinstance(password, str) or (password and not PASSWORD_MIN <= len(password) <= PASSWORD_MAX):
        raise UsageError(f"the password for '{ssid}' must be {PASSWORD_MIN} to {PASSWORD_MAX} characters "
                         "(WPA2-Personal), or empty for an open network",
                         hint="WPA2-Enterprise is not supported by MicroPython's ESP32 port")
    return ssid, password


def site_key(site: str | None) -> str:
    """A site as stored for a network: spaces collapsed ('' for the whole kommune)."""
    return " ".join((site or "").split())


def _same_site(a: str, b: str) -> bool:
    return site_key(a).casefold() == site_key(b).casefold()


def _context(kode: str, site: str, ssid: str) -> str:
    return f"wifi/{kode}/{site}/{ssid}"


def _record(n: WifiNetwork, is_open: bool) -> WifiRecord:
    return WifiRecord(kommune_kode=n.kommune_kode, site=n.site, ssid=n.ssid, open=is_open,
                      created_by=n.created_by, created_at=aware(n.created_at), updated_at=aware(n.updated_at))


class WifiNetworks:
    """The registry's WiFi calls (a part of Registry: uses its database, sealer and audit log)."""

    @staticmethod
    def _is_open(n: WifiNetwork) -> bool:
        # a sealed empty password is the header and the tag alone: a listing opens no secret
        return len(n.password_sealed) == SEALED_EMPTY

    def add_wifi_network(self, operator: Operator, *, kommune, ssid: str, password: str | None,
                         site: str | None = None, replace: bool = False) -> WifiRecord:
        """Stores a network for the kommune (or one site of it); Conflict when that SSID is there already,
        unless `replace` (a new password)."""
        kode = lookup(kommune).kode
        operator.require(kode, "manage WiFi networks")
        ssid, password = check_network(ssid, password)
        where = site_key(site)
        if len(where) > 200:
            raise UsageError("a site is at most 200 characters")
        sealed = self._sealer.seal(password.encode(), _context(kode, where, ssid))
        now = datetime.now(timezone.utc)
        place = f"site '{where}' of kommune {kode}" if where else f"kommune {kode}"
        try:
            with self.db.write() as s:
                n = s.scalar(select(WifiNetwork).where(WifiNetwork.kommune_kode == kode, WifiNetwork.site == where,
                                                       WifiNetwork.ssid == ssid))
                if n is not None and not replace:
                    raise Conflict(f"WiFi network '{ssid}' is already stored for {place}",
                                   hint="add --replace to give it a new password")
                action = "wifi.replace" if n is not None else "wifi.add"
                if n is None:
                    n = WifiNetwork(kommune_kode=kode, site=where, ssid=ssid, created_by=operator.name,
                                    created_at=now)
                    s.add(n)
                n.password_sealed = sealed
                n.updated_at = now
                s.add(AuditEntry(operator=operator.name, action=action, kommune_kode=kode,
                                 changes={"ssid": ssid, "site": where or None,
                                          "password": "<set>" if password else "<open>"}))
                s.flush()
                return _record(n, not password)
        except IntegrityError:  # another operator added it meanwhile
            raise Conflict(f"WiFi network '{ssid}' is already stored for {place}",
                           hint="add --replace to give it a new password") from None

    def list_wifi_networks(self, operator: Operator, *, kommune=None) -> list[WifiRecord]:
        """The networks this operator may see, by kommune, then site, then the order they were added."""
        stmt = select(WifiNetwork)
        scope = operator.visible_kommuner(kommune)
        if scope is not None:
            stmt = stmt.where(WifiNetwork.kommune_kode.in_(scope))
        stmt = stmt.order_by(WifiNetwork.kommune_kode, WifiNetwork.site, WifiNetwork.id)
        with self.db.read() as s:
            return [_record(n, self._is_open(n)) for n in s.scalars(stmt)]

    def remove_wifi_network(self, operator: Operator, *, kommune, ssid: str, site: str | None = None) -> None:
        """Deletes one stored network (boards that have it keep it until they are written again)."""
        kode = lookup(kommune).kode
        operator.require(kode, "manage WiFi networks")
        where = site_key(site)
        with self.db.write() as s:
            n = s.scalar(select(WifiNetwork).where(WifiNetwork.kommune_kode == kode, WifiNetwork.ssid == ssid,
                                                   WifiNetwork.site == where))
            if n is None:
                place = f"site '{where}' of kommune {kode}" if where else f"kommune {kode}"
                raise NotFound(f"no WiFi network '{ssid}' for {place}",
                               hint="'fleet wifi networks list' lists the stored networks")
            s.add(AuditEntry(operator=operator.name, action="wifi.remove", kommune_kode=kode,
                             changes={"ssid": ssid, "site": where or None}))
            s.execute(delete(WifiNetwork).where(WifiNetwork.id == n.id))

    def wifi_for(self, operator: Operator, kommune, site: str, *, purpose: str,
                 dev_eui: str | None = None) -> list[dict]:
        """[{"ssid", "password"}, ...] for a board at this site: the site's networks, then the kommune's, at
        most MAX_NETWORKS. Holds passwords: for the board's file only. The read is audited when it finds any."""
        kode = lookup(kommune).kode
        operator.require(kode, "read WiFi networks")
        with self.db.write() as s:
            rows = list(s.scalars(select(WifiNetwork).where(WifiNetwork.kommune_kode == kode)
                                  .order_by(WifiNetwork.id)))
            chosen = ([n for n in rows if n.site and _same_site(n.site, site)] + [n for n in rows if not n.site])
            chosen = chosen[:MAX_NETWORKS]
            out = [{"ssid": n.ssid,
                    "password": self._sealer.open(n.password_sealed, _context(n.kommune_kode, n.site, n.ssid))
                    .decode()} for n in chosen]
            if out:
                s.add(AuditEntry(operator=operator.name, action="wifi.read", kommune_kode=kode, dev_eui=dev_eui,
                                 changes={"ssids": [n["ssid"] for n in out]}, note=purpose))
        return out
