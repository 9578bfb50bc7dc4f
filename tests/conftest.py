"""Shared fixtures: the real PostgreSQL and Mosquitto services, and opt-in real boards.

Without the services, their tests are skipped and the run ends with a note saying so; with
BYSANS_REQUIRE_SERVICES=1 (set by .ci/run) an unreachable service fails those tests instead.
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


def _need(name, addr):
    if _reachable(addr):
        return
    if os.environ.get("BYSANS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} at {addr[0]}:{addr[1]} is not reachable, and this run requires it "
                    f"(BYSANS_REQUIRE_SERVICES=1)")
    _missing_services.add(f"{name} ({addr[0]}:{addr[1]})")
    pytest.skip(f"{name} is not running at {addr[0]}:{addr[1]}")


def _need_program(name: str, path: str | None, install: str):
    if path and os.access(path, os.X_OK):
        return
    if os.environ.get("BYSANS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is missing, and this run requires it (BYSANS_REQUIRE_SERVICES=1): {install}")
    _missing_services.add(f"{name} ({install})")
    pytest.skip(f"{name} is missing: {install}")


@pytest.fixture(scope="session")
def need_program():
    """need_program(name, path, install): skips the test (with a note at the end of the run) when the
    program at `path` is missing; fails it instead under BYSANS_REQUIRE_SERVICES=1 (.ci/run installs it)."""
    return _need_program


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


def pytest_terminal_summary(terminalreporter):
    if _missing_services:
        terminalreporter.write_line(
            "note: skipped the tests that need " + ", ".join(sorted(_missing_services))
            + "; start them to run those tests (CI requires them)", yellow=True)
