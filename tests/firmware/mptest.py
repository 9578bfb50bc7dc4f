# Helpers for MicroPython test modules (tests/firmware/mp_test_*.py).


class SkipTest(Exception):
    """Raise to skip a test: `from mptest import SkipTest`."""
