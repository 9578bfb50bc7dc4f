# Proves the fixture reports MicroPython results faithfully: see tests/host/test_mp_fixture.py.
import micropython


def test_runs_under_micropython():
    import sys
    assert sys.implementation.name == "micropython"


def test_viper_available():
    @micropython.viper
    def twice(x: int) -> int:
        return x * 2

    assert twice(21) == 42
