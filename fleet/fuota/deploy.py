"""A FUOTA deployment plan (docs/formats/fuota.md, "Deployment"): what a multicast session needs before
anything is sent — the payload and its size, the fragment size from the multicast data rate, the redundancy
from a stated loss rate, the multicast group (McAddr, McKey, McKey encrypted per device) and the class C
session's timing under the gateway's duty cycle on its sub-band.

    p = plan(payload, devices, dr=5, loss=0.10)      # devices: [Target(dev_eui, app_key, ...)]
    p.fragment_size, p.redundancy, p.session_s, p.timeout   # and p.setup_req(dev_eui) per device
    times = p.schedule()                               # send times of the fragments (s from session start)

Pure: no network, no printing. The payload is fleet.fuota.payload.build()'s.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass, field

from ..airtime import time_on_air_s
from ..errors import UsageError
from . import multicast as mc
from .fragments import Session, encode, session_for

# EU868 (RP002-1.0.x, LoRaMac-node RegionEU868): DR -> spreading factor (125 kHz) and the largest
# application payload N (FRMPayload, no FOpts). DR4-5: 242 (LMN's table); 222 where repeaters must fit.
EU868_DR = {0: (12, 51), 1: (11, 51), 2: (10, 51), 3: (9, 115), 4: (8, 242), 5: (7, 242)}
REPEATER_MAX = 222
FRAME_OVERHEAD = 13         # MHDR 1 + FHDR 7 (DevAddr 4, FCtrl 1, FCnt 2; no FOpts) + FPort 1 + MIC 4
DATA_FRAGMENT_HEADER = 3    # CID 0x08 + Index&N u16
# EU868 sub-bands (ETSI EN 300 220, as LoRaMac-node's RegionEU868 bands): (low Hz, high Hz, duty cycle)
SUB_BANDS = ((863_000_000, 865_000_000, 0.001), (865_000_000, 868_000_000, 0.01),
             (868_000_000, 868_600_000, 0.01), (868_700_000, 869_200_000, 0.001),
             (869_400_000, 869_650_000, 0.10), (869_700_000, 870_000_000, 0.01))
RX2_FREQ_HZ = 869_525_000   # EU868 RX2 and class C default: the 10 % sub-band
FAIL_TARGET = 1e-3          # per device: the chance it is left short of rank after the session
MARGIN = 2                  # coded fragments on top of what the loss formula asks for
GUARD_S = 10                # the class C window opens this long before the first fragment, closes after the last


@dataclass(frozen=True)
class Target:
    """One device of the deployment: its DevEUI (16 hex digits), its GenAppKey (the AppKey on this
    firmware), and what it runs now."""

    dev_eui: str
    app_key: bytes
    board: str = ""
    kommune: str = ""
    version: str | None = None


def fragment_size(dr: int, *, repeater: bool = False) -> int:
    """The largest FragSize a DataFragment may have at EU868 DR `dr`: N − 3."""
    if dr not in EU868_DR:
        raise UsageError(f"DR{dr} is not an EU868 multicast data rate here", hint="use DR0 (SF12) .. DR5 (SF7)")
    n = EU868_DR[dr][1]
    if repeater:
        n = min(n, REPEATER_MAX)
    return n - DATA_FRAGMENT_HEADER


def frame_toa_s(frag_size: int, dr: int) -> float:
    """Time on air of one DataFragment frame (a downlink: no payload CRC)."""
    return time_on_air_s(FRAME_OVERHEAD + DATA_FRAGMENT_HEADER + frag_size, EU868_DR[dr][0], crc=False)


def duty_cycle(freq_hz: int) -> float:
    for lo, hi, d in SUB_BANDS:
        if lo <= freq_hz <= hi:
            return d
    raise UsageError(f"{freq_hz} Hz is in no EU868 sub-band", hint=f"class C sessions use {RX2_FREQ_HZ} Hz (10 %)")


def _pmf(n: int, p: float) -> list[float]:
    """Binomial(n, p) probabilities 0..n (in log space, so large n does not underflow)."""
    if p <= 0:
        return [1.0] + [0.0] * n
    if p >= 1:
        return [0.0] * n + [1.0]
    lp, lq = math.log(p), math.log1p(-p)
    return [math.exp(math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * lp + (n - k) * lq)
            for k in range(n + 1)]


def rank_short(extra: int) -> float:
    """The chance that c coded rows, restricted to the L data rows a device lost, leave it short of rank
    when extra = c − L: for uniformly random GF(2) rows 1 − ∏_{i > extra} (1 − 2^−i); 1 when extra < 0."""
    if extra < 0:
        return 1.0
    prod = 1.0
    for i in range(extra + 1, extra + 64):
        prod *= 1.0 - 2.0 ** -i
    return 1.0 - prod


def short_probability(nb_frag: int, redundancy: int, loss: float) -> float:
    """P(a device cannot rebuild) when the M = nb_frag uncoded and R = redundancy coded fragments are
    sent and each is lost with probability p = `loss`: with L ~ Binomial(M, p) uncoded lost and
    C ~ Binomial(R, 1 − p) coded received, Σ_{L≥1} Σ_C P(L) P(C) rank_short(C − L)."""
    lost = _pmf(nb_frag, loss)
    coded = _pmf(redundancy, 1.0 - loss)
    total = 0.0
    for n_lost, pl in enumerate(lost):
        if n_lost == 0 or pl < 1e-15:
            continue
        total += pl * sum(pc * rank_short(c - n_lost) for c, pc in enumerate(coded) if pc >= 1e-15)
    return min(1.0, total)


def redundancy_for(nb_frag: int, loss: float, *, target: float = FAIL_TARGET, margin: int = MARGIN) -> int:
    """The smallest R with short_probability(M, R, loss) <= target, plus `margin`."""
    if not 0 <= loss < 0.9:
        raise UsageError(f"loss rate {loss} is not between 0 and 0.9", hint="e.g. --loss 10%")
    r = 0
    while short_probability(nb_frag, r, loss) > target:
        r += 1 if r < 64 else max(1, r // 16)
        if nb_frag + r > 16383:
            raise UsageError(f"a loss rate of {loss:.0%} asks for more than the 16383 fragments of a session",
                             hint="a higher data rate (larger fragments) or a smaller payload")
    return r + margin


@dataclass
class Plan:
    payload: bytes
    dr: int
    loss: float
    session: Session
    redundancy: int
    freq_hz: int
    duty: float
    toa_s: float
    group_id: int
    mc_addr: int
    mc_key: bytes
    targets: list = field(default_factory=list)
    guard_s: int = GUARD_S

    @property
    def fragment_size(self) -> int:
        return self.session.frag_size

    @property
    def nb_frag(self) -> int:
        return self.session.nb_frag

    @property
    def fragments(self) -> int:
        return self.session.nb_frag + self.redundancy

    @property
    def interval_s(self) -> float:
        """Start to start of two fragment frames at the sub-band's duty cycle: ToA / duty."""
        return self.toa_s / self.duty

    @property
    def send_s(self) -> float:
        """From the first fragment's start to the last one's end."""
        return (self.fragments - 1) * self.interval_s + self.toa_s

    @property
    def session_s(self) -> float:
        return self.send_s + 2 * self.guard_s

    @property
    def timeout(self) -> int:
        """McClassCSessionReq's SessionTimeOut: the window lasts 2^timeout s >= session_s."""
        t = max(0, math.ceil(math.log2(self.session_s)))
        if t > 15:
            raise UsageError(f"the session needs {self.session_s / 3600:.1f} h of class C, more than 2^15 s",
                             hint="a higher data rate, a lower loss rate or a smaller payload")
        return t

    def schedule(self) -> list[float]:
        """Send time of each fragment, seconds from the session's start (the window opens at 0)."""
        return [self.guard_s + i * self.interval_s for i in range(self.fragments)]

    def data_fragments(self) -> list[bytes]:
        """The DataFragment payloads (FPort 201) in send order."""
        return encode(self.payload, self.fragment_size, self.redundancy, frag_index=self.session.frag_index)[1]

    def group(self) -> mc.Group:
        return mc.Group(self.group_id, self.mc_addr, self.mc_key)

    def setup_req(self, target: Target) -> bytes:
        """McGroupSetupReq for one device: McKey encrypted under its McKEKey."""
        return self.group().setup_req(target.app_key)

    def class_c_req(self, session_time_gps: int) -> bytes:
        return mc.class_c_session_req(self.group_id, session_time_gps, self.timeout, self.freq_hz, self.dr)

    def frag_setup_req(self) -> bytes:
        return self.session.setup_req()

    def as_dict(self) -> dict:
        """Everything but keys: what an operator reads before starting."""
        return {"payload_bytes": len(self.payload), "dr": self.dr, "loss": self.loss,
                "fragment_size": self.fragment_size, "nb_frag": self.nb_frag, "padding": self.session.padding,
                "redundancy": self.redundancy, "fragments": self.fragments,
                "short_probability": float(f"{short_probability(self.nb_frag, self.redundancy, self.loss):.2g}"),
                "group": {"id": self.group_id, "mc_addr": f"{self.mc_addr:08x}"},
                "freq_hz": self.freq_hz, "duty_cycle": self.duty, "frame_toa_ms": round(self.toa_s * 1000, 1),
                "interval_s": round(self.interval_s, 2), "session_s": round(self.session_s),
                "timeout": self.timeout, "devices": len(self.targets)}


def plan(payload: bytes, targets, *, dr: int = 5, loss: float = 0.10, freq_hz: int = RX2_FREQ_HZ,
         group_id: int = 0, mc_addr: int | None = None, mc_key: bytes | None = None, frag_index: int = 0,
         repeater: bool = False, target: float = FAIL_TARGET) -> Plan:
    """The plan of one multicast session carrying `payload` to `targets`. A fresh McKey (and McAddr, in
    the locally administered range 0xFE......) unless given."""
    if not payload:
        raise UsageError("the payload is empty: build it with fleet fuota payload")
    size = fragment_size(dr, repeater=repeater)
    session = session_for(len(payload), size, frag_index=frag_index)
    duty = duty_cycle(freq_hz)
    mc.class_c_session_req(group_id, 0, 0, freq_hz, dr)  # checks the group id and the frequency grid
    p = Plan(payload=bytes(payload), dr=dr, loss=loss, session=session,
                redundancy=redundancy_for(session.nb_frag, loss, target=target), freq_hz=freq_hz, duty=duty,
                toa_s=frame_toa_s(size, dr), group_id=group_id,
                mc_addr=(0xFE000000 | secrets.randbits(24)) if mc_addr is None else mc_addr,
                mc_key=secrets.token_bytes(16) if mc_key is None else bytes(mc_key), targets=list(targets))
    p.timeout  # noqa: B018 - a session longer than 2^15 s is refused here, before anything is sent
    return p
