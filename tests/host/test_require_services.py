"""The suite's own switch for CI (tests/conftest.py): a test whose service or program is missing is skipped,
with a note at the end of the run saying what to start or install, and under BYSANS_REQUIRE_SERVICES=1
(.ci/run) it fails instead, so that the JavaScript codec tests (node) and the broker-restart test (the
mosquitto binary) cannot quietly drop out of CI. Run on a copy of the suite's conftest with pytester."""

import shutil
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
MISSING = "/nonexistent/bysans-test/node"

TEST_FILE = f"""
import pytest

def test_needs_node(program):
    program({MISSING!r}, "nodejs")

@pytest.fixture(scope="module")
def codec(program):
    program({MISSING!r}, "nodejs")  # as the module-wide JavaScript fixtures ask for it

def test_needs_node_through_a_module_fixture(codec):
    pass

def test_needs_nothing():
    pass
"""


def _suite(pytester):
    shutil.copy(TESTS / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(TESTS / "mp32support.py", pytester.path / "mp32support.py")
    pytester.makepyfile(test_services=TEST_FILE)


def test_a_missing_program_is_skipped_with_a_note(pytester, monkeypatch):
    monkeypatch.delenv("BYSANS_REQUIRE_SERVICES", raising=False)
    _suite(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=2)
    result.stdout.fnmatch_lines([f"*note: skipped the tests that need {MISSING} (apt-get install nodejs)*"])


def test_require_services_turns_the_skip_into_a_failure(pytester, monkeypatch):
    monkeypatch.setenv("BYSANS_REQUIRE_SERVICES", "1")
    _suite(pytester)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1, errors=1)  # the module fixture's failure is an error
    result.stdout.fnmatch_lines(["*is not installed (apt-get install nodejs), and this run requires it "
                                 "(BYSANS_REQUIRE_SERVICES=1)*"])
    assert "note: skipped" not in result.stdout.str()
