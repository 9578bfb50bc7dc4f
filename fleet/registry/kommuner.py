"""The 98 Danish kommuner (public data, fleet/data/kommuner.csv): look one up by its kommunekode.

A kommunekode is four digits ("0751"); "751" is accepted too. An unknown code is a `UnknownKommune`
error that names the closest kommuner, so a typo ("715" for Aarhus) points at the right one.
"""

import csv
import difflib
import functools
from dataclasses import dataclass
from pathlib import Path

from ..errors import UnknownKommune

DATA_FILE = Path(__file__).resolve().parent.parent / "data" / "kommuner.csv"


@dataclass(frozen=True)
class Kommune:
    kode: str      # four digits, "0751"
    navn: str      # "Aarhus"
    region: str    # "Midtjylland"
    lat: float     # a point inside the kommune
    lon: float

    def __str__(self) -> str:
        return f"{self.kode} {self.navn}"


@functools.cache
def all_kommuner() -> dict[str, Kommune]:
    """kommunekode -> Kommune, in file order."""
    out = {}
    with DATA_FILE.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            k = Kommune(row["kode"], row["navn"], row["region"], float(row["lat"]), float(row["lon"]))
            out[k.kode] = k
    return out


def normalize_kode(code) -> str | None:
    """'751', '0751', 751 -> '0751'; anything that is not 1-4 digits -> None."""
    s = str(code).strip()
    if not s.isdigit() or not 1 <= len(s) <= 4:
        return None
    return s.zfill(4)


def lookup(code) -> Kommune:
    """The kommune with this kommunekode, or UnknownKommune naming the closest ones.

    A name ("Aarhus", case-insensitive) is accepted as well, for people who type names.
    """
    table = all_kommuner()
    kode = normalize_kode(code)
    if kode is not None and kode in table:
        return table[kode]
    text = str(code).strip()
    by_name = {k.navn.casefold(): k for k in table.values()}
    if text.casefold() in by_name:
        return by_name[text.casefold()]
    raise UnknownKommune(f"'{text}' is not a kommunekode of a Danish kommune{_closest(text)}")


def _closest(text: str) -> str:
    table = all_kommuner()
    kode = normalize_kode(text)
    if kode is not None:
        near = difflib.get_close_matches(kode, list(table), n=3, cutoff=0.5)
    else:
        names = {k.navn: k for k in table.values()}
        near = [names[n].kode for n in difflib.get_close_matches(text, list(names), n=3, cutoff=0.6)]
    if not near:
        return ""
    return " (closest: " + ", ".join(str(table[c]) for c in near) + ")"
