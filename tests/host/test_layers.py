"""The rooms of the code and the directions their imports may run (docs/architecture.md).

Every module's imports are read with `ast` (those inside functions too, relative ones resolved), and each
is checked against the rules below: a new import that runs the wrong way fails here, with the line.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOST = ("fleet", "provisioning", "lab")


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "firmware":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """(line, imported module) for every import in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    me = _module_name(path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1] if node.level > 1 else base
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            yield node.lineno, mod
            for a in node.names:  # `from . import x` may name a submodule
                yield node.lineno, f"{mod}.{a.name}"


def _files(room: str):
    return sorted(p for p in (ROOT / room).rglob("*.py") if "migrations/versions" not in p.as_posix()) \
        if (ROOT / room).is_dir() else []


# Modules of the test suite that its files import by bare name (tests put their folders on sys.path), the
# conftest modules with their helpers (run_fleet, ...) among them.
TEST_MODULES = tuple(sorted({p.stem for p in (ROOT / "tests").rglob("*.py") if p.stem != "__init__"}))


def _under(mod: str, *prefixes: str) -> bool:
    return any(mod == p or mod.startswith(p + ".") for p in prefixes)


# (room, files of the room, what they must not import, why)
RULES = [
    ("firmware", lambda p: True, ("fleet", "provisioning", "lab", "tests", "scripts"),
     "firmware runs on the board: it never imports host code"),
    ("fleet", lambda p: "fleet/cli/" not in p.as_posix(), ("fleet.cli",),
     "the library never imports the CLI"),
    ("fleet", lambda p: "fleet/cli/" not in p.as_posix(), ("lab", "tests", "scripts") + TEST_MODULES,
     "the library never imports the lab (it imitates the world for tests, benchmarks and `fleet sim`)"),
    ("fleet", lambda p: "fleet/cli/" not in p.as_posix(), ("provisioning",),
     "fleet's core never imports provisioning (the technician's room sits above it)"),
    ("provisioning", lambda p: True, ("fleet.cli", "fleet.sim", "lab", "tests", "scripts"),
     "provisioning reaches a virtual board through its port, like a real one, and never imports the CLI"),
    ("lab", lambda p: True, ("fleet.cli", "tests", "scripts") + TEST_MODULES,
     "the lab is a library for tests and benchmarks, not a command, and needs nothing from the tests"),
    ("scripts", lambda p: True, ("tests",) + TEST_MODULES,
     "benchmarks use the library and the lab, never the test suite's files"),
]


@pytest.mark.parametrize("room,picks,banned,why", RULES, ids=[f"{r[0]}: {r[3].split(':')[0]}" for r in RULES])
def test_imports_run_the_allowed_way(room, picks, banned, why):
    wrong = []
    for f in _files(room):
        if not picks(f):
            continue
        seen = set()
        for line, mod in _imports(f):
            if line not in seen and _under(mod, *banned):
                seen.add(line)
                wrong.append(f"{f.relative_to(ROOT)}:{line} imports {mod}")
    assert not wrong, why + ":\n  " + "\n  ".join(wrong)


def test_the_reader_sees_relative_and_nested_imports(tmp_path, monkeypatch):
    """The checker itself: a function-level relative import is resolved to its absolute module."""
    pkg = ROOT / "fleet" / "registry" / "api.py"
    mods = {m for _, m in _imports(pkg)}
    assert any(m.startswith("fleet.registry.") for m in mods)
    assert "fleet.cli" not in mods


def test_every_rule_of_the_architecture_page_is_checked_here():
    """docs/architecture.md's table of rules ("room | never imports | why") and RULES say the same: a rule
    added to the page without a check here (or a room's ban dropped here) fails."""
    rows = [line.split("|")[1:3] for line in (ROOT / "docs" / "architecture.md").read_text().splitlines()
            if line.startswith("| `")]
    doc = {}
    for room, banned in rows:
        room = room.strip().split("`")[1].strip("/")
        names = set(banned.split("`")[1::2]) | ({"tests"} if "tests" in banned else set())
        if "anything of the host" in banned:
            names |= {"fleet", "provisioning", "lab"}
        doc[room] = names
    assert set(doc) == {r[0] for r in RULES}
    for room, names in doc.items():
        checked = {b for r in RULES if r[0] == room for b in r[2]}
        assert names <= checked, f"{room}: the page bans {sorted(names - checked)}, not checked here"


def test_no_test_imports_a_conftest_module_by_name():
    """Two folders of the suite have a conftest.py; `from conftest import x` gets whichever was imported
    first, so a run of those folders together fails to import. Helpers live in modules of their own names
    (tests/e2e/e2e_tools.py, tests/mp32support.py)."""
    wrong = [f"{f.relative_to(ROOT)}:{line} imports {mod}"
             for f in sorted((ROOT / "tests").rglob("*.py")) + _files("scripts") + _files("lab")
             for line, mod in _imports(f) if _under(mod, "conftest")]
    assert not wrong, "import the helper's own module instead:\n  " + "\n  ".join(wrong)
