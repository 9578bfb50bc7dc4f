"""Shared fixtures: the real PostgreSQL and Mosquitto services, the programs some tests run (node, the
mosquitto broker binary), and opt-in real boards.

Without the services or programs, their tests are skipped and the run ends with a note saying so; with
BYSANS_REQUIRE_SERVICES=1 (set by .ci/run, which also installs the programs) a missing one fails those
tests instead.
"""

import os
import socket

import pytest

pytest_plugins = ["pytester"]

POSTGRES = ("127.0.0.1", 5432)
MQTT = ("127.0.0.1", 1883)
_missing_services = set()


def _reachable(addr) -> bool:
    try:
        with socket.create_connection(addr, timeout=1.0):
            return True
    except OSError:
        return False


SERVICE_SKIP = "needs a service or program: "  # how such a skip's reason starts (the summary's note finds it)
MP32_SKIP = "needs the 32-bit MicroPython: "


def _missing(what, note):
    """Skips the test for a missing service or program, or fails it when the run requires them all."""
    if os.environ.get("BYSANS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{what}, and this run requires it (BYSANS_REQUIRE_SERVICES=1)")
    _missing_services.add(note)
    pytest.skip(f"{SERVICE_SKIP}{what} [{note}]")


def _need(name, addr):
    if not _reachable(addr):
        _missing(f"{name} is not running at {addr[0]}:{addr[1]}", f"{name} ({addr[0]}:{addr[1]})")


@pytest.fixture(scope="session")
def postgres_url():
    """URL of the PostgreSQL test database (trust auth, database `test`)."""
    _need("PostgreSQL", POSTGRES)
    return os.environ.get("BYSANS_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def mqtt_broker():
    """(host, port) of the Mosquitto broker."""
    _need("Mosquitto", MQTT)
    return MQTT


def need_program(path, package):
    """`path` when that program is installed; otherwise skips the test (fails it under
    BYSANS_REQUIRE_SERVICES=1). `package`: the Debian package that installs it."""
    if not (path and os.path.exists(path)):
        _missing(f"{path} is not installed (apt-get install {package})", f"{path} (apt-get install {package})")
    return path


@pytest.fixture(scope="session")
def program():
    """program(path, package): see need_program."""
    return need_program


@pytest.fixture(scope="session")
def mp32():
    """Path of the 32-bit MicroPython (tests/mp32support.py): skipped with a note where it is missing."""
    import mp32support

    return mp32support.require()


@pytest.fixture(scope="session")
def mp32rom():
    """Path of the 32-bit MicroPython with the virtual board's ROM (scripts/build-micropython32-rom)."""
    import mp32support

    return mp32support.require_rom()


def _skip_reasons(terminalreporter) -> list[str]:
    """The reasons of the run's skipped tests, also those run by pytest-xdist's workers (whose module state
    the controller does not share)."""
    out = []
    for rep in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(rep, "longrepr", None)
        if isinstance(longrepr, tuple) and len(longrepr) == 3:
            out.append(str(longrepr[2]))
    return out


def pytest_terminal_summary(terminalreporter):
    import mp32support

    reasons = _skip_reasons(terminalreporter)
    services = set(_missing_services)
    for r in reasons:
        if SERVICE_SKIP in r and r.endswith("]"):  # "... [note]": _missing's skip reason
            services.add(r[r.rindex("[") + 1:-1])
    mp32 = list(mp32support.missing) + [r.split(MP32_SKIP, 1)[1] for r in reasons if MP32_SKIP in r]
    if mp32:
        terminalreporter.write_line(
            "note: skipped the tests that measure heap on the 32-bit MicroPython (as on an ESP32): "
            f"{mp32[0]}; build it with scripts/build-micropython32-rom and set "
            "BYSANS_MICROPYTHON32 to the path it prints (CI requires it)", yellow=True)
    if services:
        terminalreporter.write_line(
            "note: skipped the tests that need " + ", ".join(sorted(services))
            + "; start or install them to run those tests (CI requires them)", yellow=True)
