"""WiFi networks in the registry: sealed per kommune or site, chosen for a board by its site and kommune at
enrollment, managed with `fleet wifi networks`, never shown; on SQLite and PostgreSQL."""

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import create_engine, text

from fleet import boards
from fleet.errors import AccessDenied, Conflict, NotFound, UsageError
from provisioning.enroll_on_board import config_files
from provisioning.enrollment import enroll_board
from test_registry_support import (ADMIN, AARHUS, ODENSE, db_url, key, key_env, new_device,  # noqa: F401
                                   registry, run_cli)

PW = "korrekt-hest-batteri"


def test_a_board_gets_its_sites_networks_first_then_its_kommunes(registry):
    registry.add_wifi_network(AARHUS, kommune="751", ssid="kommune-iot", password=PW)
    registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password="skole-pass-1", site="Skovvangskolen")
    registry.add_wifi_network(AARHUS, kommune="751", ssid="andet-sted", password="andet-pass-1", site="Rådhuset")
    registry.add_wifi_network(AARHUS, kommune="751", ssid="gaest", password="")
    # the site as an enrolled device spells it: case and spaces differ
    got = registry.wifi_for(AARHUS, "751", "  skovvangSKOLEN ", purpose="test")
    assert got == [{"ssid": "skole-iot", "password": "skole-pass-1"}, {"ssid": "kommune-iot", "password": PW},
                   {"ssid": "gaest", "password": ""}]
    assert [n["ssid"] for n in registry.wifi_for(AARHUS, "751", "Park Allé 1", purpose="test")] == \
        ["kommune-iot", "gaest"]
    assert registry.wifi_for(ODENSE, "461", "Skovvangskolen", purpose="test") == []


def test_at_most_four_networks_reach_a_board(registry):
    for i in range(6):
        registry.add_wifi_network(AARHUS, kommune="751", ssid=f"net{i}", password=PW, site="S" if i % 2 else "")
    got = [n["ssid"] for n in registry.wifi_for(AARHUS, "751", "S", purpose="test")]
    assert got == ["net1", "net3", "net5", "net0"]


def test_the_password_is_sealed_at_rest_and_opens_with_the_registry_key_alone(registry, db_url, key):
    registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password=PW, site="Skovvangskolen")
    eng = create_engine(db_url)
    try:
        with eng.connect() as c:
            row = c.execute(text("SELECT kommune_kode, site, ssid, password_sealed FROM wifi_networks")).one()
            audit = c.execute(text("SELECT changes FROM audit_log")).all()
    finally:
        eng.dispose()
    sealed = bytes(row.password_sealed)
    assert PW.encode() not in sealed and PW not in str(audit)
    # the layout sealing.py documents, opened by `cryptography` directly: version, key id, nonce, ciphertext
    assert sealed[0] == 1
    aad = f"wifi/{row.kommune_kode}/{row.site}/{row.ssid}".encode()
    assert AESGCM(key).decrypt(sealed[5:17], sealed[17:], aad) == PW.encode()


def test_a_kommune_manages_only_its_own_networks(registry):
    registry.add_wifi_network(AARHUS, kommune="751", ssid="aarhus-iot", password=PW)
    registry.add_wifi_network(ODENSE, kommune="461", ssid="odense-iot", password=PW)
    assert [r.ssid for r in registry.list_wifi_networks(AARHUS)] == ["aarhus-iot"]
    assert [r.ssid for r in registry.list_wifi_networks(ADMIN)] == ["odense-iot", "aarhus-iot"]  # by kommunekode
    with pytest.raises(AccessDenied):
        registry.add_wifi_network(ODENSE, kommune="751", ssid="x", password=PW)
    with pytest.raises(AccessDenied):
        registry.wifi_for(ODENSE, "751", "Park Allé 1", purpose="test")
    with pytest.raises(AccessDenied):
        registry.remove_wifi_network(ODENSE, kommune="751", ssid="aarhus-iot")
    assert len(registry.list_wifi_networks(ADMIN)) == 2


def test_bad_input_names_the_network_never_the_password_and_stores_nothing(registry):
    with pytest.raises(UsageError) as e:
        registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password="kort7ch")
    assert "skole-iot" in str(e.value) and "kort7ch" not in str(e.value) + str(e.value.hint)
    with pytest.raises(UsageError):
        registry.add_wifi_network(AARHUS, kommune="751", ssid="x" * 33, password=PW)
    assert registry.list_wifi_networks(AARHUS) == []


def test_a_stored_network_is_replaced_only_when_asked_and_removed_once(registry):
    registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password=PW, site="S")
    with pytest.raises(Conflict) as e:
        registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password="nyt-password", site="S")
    assert "--replace" in e.value.hint
    assert registry.wifi_for(AARHUS, "751", "S", purpose="test")[0]["password"] == PW
    registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password="nyt-password", site="S",
                              replace=True)
    assert registry.wifi_for(AARHUS, "751", "S", purpose="test") == [{"ssid": "skole-iot", "password": "nyt-password"}]
    registry.remove_wifi_network(AARHUS, kommune="751", ssid="skole-iot", site="S")
    with pytest.raises(NotFound):
        registry.remove_wifi_network(AARHUS, kommune="751", ssid="skole-iot", site="S")
    actions = [a.action for a in registry.audit_log(AARHUS)]
    assert actions[:3] == ["wifi.remove", "wifi.read", "wifi.replace"]


def test_enrollment_writes_the_sites_networks_to_a_board_with_wifi(registry):
    registry.add_wifi_network(AARHUS, kommune="751", ssid="skole-iot", password=PW, site="Skovvangskolen")
    written = []
    rec, _ = enroll_board(registry, AARHUS, new_device(site="Skovvangskolen", kind="env"), mac="24:0a:c4:00:00:01",
                          write_board=written.append)
    files = config_files(written[0])
    assert json.loads(files["/config/wifi.json"]) == {"networks": [{"ssid": "skole-iot", "password": PW}]}
    read = [a for a in registry.audit_log(AARHUS, dev_eui=rec.dev_eui) if a.action == "wifi.read"]
    assert read and read[0].changes == {"ssids": ["skole-iot"]}


def test_enrollment_writes_no_wifi_file_without_networks_or_without_wifi(registry, monkeypatch):
    written = []
    enroll_board(registry, AARHUS, new_device(site="Park Allé 2"), mac="24:0a:c4:00:00:02", write_board=written.append)
    assert "/config/wifi.json" not in config_files(written[0])
    registry.add_wifi_network(AARHUS, kommune="751", ssid="kommune-iot", password=PW)
    virtual = boards.get("virtual")
    no_wifi = dataclasses.replace(virtual, definition={**virtual.definition, "wifi": False, "updates": "lorawan"})
    monkeypatch.setattr(boards, "get", lambda name: no_wifi)
    enroll_board(registry, AARHUS, new_device(site="Park Allé 3"), mac="24:0a:c4:00:00:03", write_board=written.append)
    assert "/config/wifi.json" not in config_files(written[1])


def test_cli_adds_lists_and_removes_networks_without_showing_a_password(db_url, key_env, capsys, monkeypatch):
    base = ["--db", db_url, "--operator", "anna", "--kommune", "751"]
    monkeypatch.setenv("FLEET_WIFI_PASSWORD", PW)
    code, out, err = run_cli(["wifi", "networks", "add", *base, "--ssid", "skole-iot", "--site", "Skovvangskolen",
                              "--json"], capsys)
    assert code == 0, err
    assert json.loads(out) | {"created_at": None, "updated_at": None} == {
        "kommune": "0751", "site": "Skovvangskolen", "ssid": "skole-iot", "security": "wpa2-personal",
        "created_by": "anna", "created_at": None, "updated_at": None}
    code, out, err = run_cli(["wifi", "networks", "add", *base, "--ssid", "skole-iot", "--site", "Skovvangskolen"],
                             capsys)
    assert code != 0 and "already stored" in err and "--replace" in err
    code, out, err = run_cli(["wifi", "networks", "list", *base, "--json"], capsys)
    assert code == 0 and [n["ssid"] for n in json.loads(out)] == ["skole-iot"]
    code, out2, _ = run_cli(["wifi", "networks", "list", *base], capsys)
    assert "skole-iot" in out2 and "Skovvangskolen" in out2
    code, out3, err3 = run_cli(["wifi", "networks", "remove", *base, "--ssid", "skole-iot", "--json"], capsys)
    assert code != 0 and "no WiFi network 'skole-iot' for kommune 0751" in err3  # stored for the site, not all
    code, out3, err3 = run_cli(["wifi", "networks", "remove", *base, "--ssid", "skole-iot", "--site",
                                "Skovvangskolen", "--json"], capsys)
    assert code == 0, err3
    assert json.loads(out3) == {"removed": {"kommune": "0751", "site": "Skovvangskolen", "ssid": "skole-iot"}}
    assert PW not in out + err + out2 + out3 + err3
