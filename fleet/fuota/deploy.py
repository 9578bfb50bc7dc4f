"""A FUOTA deployment plan (docs/formats/fuota.md, "Deployment"): what a multicast session needs before
anything is sent — the payload and its size, the fragment size from the multicast data rate, the redundancy
from a stated loss rate, the multicast group (McAddr, McKey, McKey encrypted per device) and the class C
session's timing under the gateway's duty cycle on its sub-band.

    p = plan(payload, devices, dr=5, loss=0.10)      # devices: [Target(dev_eui, app_key, ...)]
    p.fragment_size, p.redundancy, p.session_s, p.timeout   # and p.setup_req(target) per device
    times = p.schedule()                               # send times of the fragments (s from session start)

Pure: no network, no printing. The payload is fleet.fuota.payload.build()'s.
"""

from __future__ import annotations

import bisect
import math
import random
import secrets
from dataclasses import dataclass, field, replace

from ..airtime import time_on_air_s
from ..errors import UsageError
from . import multicast as mc
from .fragments import Session, encode, session_for
from .spec import SPEC

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
MARGIN = 2                  # coded fragments on top of what the sampled loss patterns ask for
TRIALS = 20000              # loss patterns the redundancy is judged over
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


def _coded_row(k: int, m: int) -> int:
    row = 0
    for c in SPEC.matrix_line(k, m):
        row |= 1 << c
    return row


class Needs:
    """Over `trials` seeded loss patterns (each fragment lost with probability `loss`, independently), how
    many fragments must be sent, in send order (the M uncoded, then coded ones with TS004's own parity rows),
    before a device has full rank. A coded row only matters on the data rows the device lost: it is taken
    as `row & lost` and reduced against the coded rows kept so far."""

    def __init__(self, m: int, loss: float, trials: int = TRIALS):
        rnd = random.Random(f"bysans-fuota:{m}:{loss}")
        rows: dict[int, int] = {}
        self.trials, self.needs = trials, []
        cap = min(SPEC.N_MASK, 4 * m + 256)  # sent beyond this: counted as never (a hopeless pattern)
        for _ in range(trials):
            lost = 0
            for i in range(m):
                if rnd.random() < loss:
                    lost |= 1 << i
            want, piv, n = bin(lost).count("1"), {}, m
            while len(piv) < want and n < cap:
                n += 1
                if rnd.random() < loss:
                    continue
                row = rows.get(n)
                if row is None:
                    row = rows[n] = _coded_row(n - m, m)
                row &= lost
                while row:
                    top = row.bit_length() - 1
                    if top not in piv:
                        piv[top] = row
                        break
                    row ^= piv[top]
            self.needs.append(n if len(piv) == want else SPEC.N_MASK + 1)
        self.needs.sort()

    def short(self, sent: int) -> float:
        """The share of the trials still short of rank after `sent` fragments."""
        return (self.trials - bisect.bisect_right(self.needs, sent)) / self.trials


def redundancy_for(nb_frag: int, loss: float, *, target: float = FAIL_TARGET, margin: int = MARGIN,
                   needs: Needs | None = None) -> int:
    """The smallest R with Needs(M, loss).short(M + R) <= target, plus `margin`."""
    if not 0 <= loss < 0.9:
        raise UsageError(f"loss rate {loss} is not between 0 and 0.9", hint="e.g. --loss 10%")
    needs = needs or Needs(nb_frag, loss)
    k = min(needs.trials - 1, int(needs.trials * (1 - target)))
    sent = needs.needs[k]  # the needs are sorted: at most `target` of the trials need more than this
    while needs.short(sent) > target:
        sent += 1
    if sent > SPEC.N_MASK:
        raise UsageError(f"a loss rate of {loss:.0%} asks for more coded fragments than a session of {nb_frag} "
                         "fragments can usefully carry",
                         hint="a lower data rate (more, smaller fragments: TS004's coding needs a few dozen) or "
                              "a lower --loss")
    return max(0, sent - nb_frag) + margin


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
    short: float = 0.0          # share of the sampled loss patterns that leave a device short of rank

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
                "short_probability": self.short, "trials": TRIALS,
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
    # McGroupBitMask: the session's fragments come on this plan's group (the node drops other groups')
    session = replace(session, mc_group_mask=1 << group_id)
    shortest = ((session.nb_frag + MARGIN - 1) * frame_toa_s(size, dr) / duty + frame_toa_s(size, dr) + 2 * GUARD_S)
    if shortest > 2 ** 15:
        raise UsageError(f"the session needs more than {shortest / 3600:.1f} h of class C, more than 2^15 s",
                         hint="a higher data rate, a lower loss rate or a smaller payload")
    needs = Needs(session.nb_frag, loss) if 0 <= loss < 0.9 else None
    redundancy = redundancy_for(session.nb_frag, loss, target=target, needs=needs)
    p = Plan(payload=bytes(payload), dr=dr, loss=loss, session=session, redundancy=redundancy,
             short=needs.short(session.nb_frag + redundancy), freq_hz=freq_hz, duty=duty,
                toa_s=frame_toa_s(size, dr), group_id=group_id,
                mc_addr=(0xFE000000 | secrets.randbits(24)) if mc_addr is None else mc_addr,
                mc_key=secrets.token_bytes(16) if mc_key is None else bytes(mc_key), targets=list(targets))
    p.timeout  # noqa: B018 - a session longer than 2^15 s is refused here, before anything is sent
    return p
