"""`fleet lorawan decode` through click's CliRunner and the real `fleet` entry point."""

import json
import os
import subprocess
import sys

from click.testing import CliRunner

from fleet.cli import cli

NWK = "44024241ed4ce9a68c6a8bc055233fd3"
APP = "ec925802ae430ca77fd3dd73cb2cc588"
UPLINK = "40F17DBE4900020001954378762B11FF0D"
APPKEY = "98929b92c49edba9676d646d3b612456"


def _run(*args, env=None):
    r = CliRunner().invoke(cli, ["lorawan", "decode", *args], env=env, catch_exceptions=False)
    return r


def test_decode_json_has_the_promised_fields():
    r = _run(UPLINK, "--nwkskey", NWK, "--appskey", APP, "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.output)
    assert d["mtype"] == "unconfirmed-up" and d["dev_addr"] == "49be7df1" and d["fcnt"] == 2
    assert d["fport"] == 1 and d["payload_hex"] == b"test".hex() and d["mic_ok"] is True
    assert NWK not in r.output and APP not in r.output


def test_decode_without_keys_and_with_a_wrong_key():
    d = json.loads(_run(UPLINK, "--json").output)
    assert d["mic_ok"] is None and d["payload_hex"] is None and d["payload_encrypted_hex"] == "95437876"
    d = json.loads(_run(UPLINK, "--nwkskey", APP, "--json").output)
    assert d["mic_ok"] is False


def test_keys_from_the_environment_and_a_join_request():
    r = _run("0039363463336913AA05693574323831330489C65B1304", "--json", env={"FLEET_APPKEY": APPKEY})
    d = json.loads(r.output)
    assert d["mtype"] == "join-request" and d["mic_ok"] is True and d["dev_nonce"] == 0x8904
    assert APPKEY not in r.output


def test_human_output():
    r = _run(UPLINK, "--nwkskey", NWK, "--appskey", APP)
    assert r.exit_code == 0
    assert "49be7df1" in r.output and "74657374" in r.output and "mic_ok: yes" in r.output
    assert NWK not in r.output and APP not in r.output


def test_help_has_an_example():
    r = CliRunner().invoke(cli, ["lorawan", "decode", "--help"])
    assert r.exit_code == 0 and "Example:" in r.output and "fleet lorawan decode" in r.output


def _fleet(*args):
    env = dict(os.environ)
    env.pop("FLEET_NWKSKEY", None)
    return subprocess.run([sys.executable, "-c", "from fleet.cli import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=60)


def test_bad_key_is_a_usage_error_and_is_not_echoed():
    bad = NWK[:-2] + "zz"
    p = _fleet("lorawan", "decode", UPLINK, "--nwkskey", bad)
    assert p.returncode == 2
    assert p.stderr.startswith("error: --nwkskey") and "hint:" in p.stderr
    assert bad not in p.stderr + p.stdout and NWK[:-2] not in p.stderr + p.stdout
    short = NWK[:30]
    p = _fleet("lorawan", "decode", UPLINK, "--appskey", short)
    assert p.returncode == 2 and short not in p.stderr + p.stdout


def test_bad_frame_is_a_named_error_with_a_hint():
    p = _fleet("lorawan", "decode", "40F17D", "--nwkskey", NWK, "--json")
    e = json.loads(p.stderr)  # with --json the error is JSON too
    assert p.returncode == 40 == e["exit_code"] and e["error"] and e["hint"] and p.stdout == ""
    assert NWK not in p.stderr + p.stdout
    p = _fleet("lorawan", "decode", "not-hex")
    assert p.returncode == 40
