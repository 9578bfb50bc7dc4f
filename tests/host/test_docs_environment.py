"""docs/environment.md names every environment variable the tools read, and names none they do not."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Set by the virtual board's supervisor for its own child process, never by a user.
INTERNAL = {"BYSANS_HW", "BYSANS_IMG", "BYSANS_RAW", "BYSANS_ROMFS", "BYSANS_VROM"}
NAME = re.compile(r"\b((?:FLEET|BYSANS)_[A-Z_]+[A-Z])\b")


def _read_by_code() -> set[str]:
    names = set()
    for d in ("fleet", "provisioning", "lab"):
        for f in (ROOT / d).rglob("*.py") if (ROOT / d).is_dir() else ():
            text = f.read_text()
            names |= {m for m in NAME.findall(text)
                      if re.search(rf"(environ|getenv|envvar|ENV\w*\s*=)[^\n]*{m}", text)}
    names |= set(NAME.findall((ROOT / "tests" / "conftest.py").read_text())) & {"BYSANS_REQUIRE_SERVICES",
                                                                                 "BYSANS_TEST_POSTGRES"}
    return names - INTERNAL


def test_every_variable_the_code_reads_is_documented():
    doc = (ROOT / "docs" / "environment.md").read_text()
    missing = sorted(n for n in _read_by_code() if f"`{n}`" not in doc)
    assert not missing, f"docs/environment.md does not name {missing}"


def test_the_page_names_no_variable_nobody_reads():
    doc = set(NAME.findall((ROOT / "docs" / "environment.md").read_text()))
    code = set()
    for d in ("fleet", "provisioning", "lab", "tests", "scripts", ".ci"):
        for f in (ROOT / d).rglob("*") if (ROOT / d).is_dir() else ():
            if f.is_file() and f.suffix in (".py", "", ".sh"):
                code |= set(NAME.findall(f.read_text(errors="replace")))
    assert doc <= code, f"docs/environment.md names variables nothing reads: {sorted(doc - code)}"
