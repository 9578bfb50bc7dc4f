"""`fleet flash` on a real board: opt-in, `./scripts/test tests/hardware --port /dev/ttyUSB0 --board heltec_v3`
(pytest-embedded's --port); skipped without a port."""

import pytest


def _opt(config, name):
    try:
        return config.getoption(name)
    except ValueError:
        return None


@pytest.fixture
def real_port(request):
    port = _opt(request.config, "port")
    if not port:
        pytest.skip("no real board: give --port (and --board) to run the hardware tests")
    return port


def test_flash_real_board_verifies_and_self_tests(real_port, request):
    from provisioning.flash import flash

    board = _opt(request.config, "board") or "heltec_v3"
    rep = flash(real_port, board, check_self_test=False)
    assert rep.identity["chip"] != "virtual"
    assert rep.transfer["compressed"]
    assert rep.self_test["app"]
