"""Tokens and the HTTP API: a kommune's token sees and changes only its own devices; OS2iot pushes; no
secret in any response."""

import json
import urllib.error
import urllib.request

import pytest
from sqlalchemy import select

from fleet.errors import TokenInvalid
from fleet.store.models import ApiToken
from fleet.registry.tokens import create_token, operator_for_token, revoke_token
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from telemetry_support import enroll, waste_event
from test_registry_support import ADMIN, AARHUS, db_url, key, key_env, registry  # noqa: F401 (fixtures)


def call(server, method, path, token=None, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(server.url + path, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


@pytest.fixture
def served(registry, db_url, key_env):
    with Server(build_app(ServeContext(db_url=db_url))) as srv:
        yield srv


def test_tokens_are_stored_hashed_and_shown_once(registry):
    token, info = create_token(registry, AARHUS, kommune="751")
    with registry.db.read() as s:
        row = s.scalar(select(ApiToken))
    assert token not in (row.token_hash, row.token_id) and token.split("_", 2)[2] not in row.token_hash
    assert token not in repr(row) and token not in repr(info)
    assert operator_for_token(registry, token).kommune == "0751"
    with pytest.raises(TokenInvalid):
        operator_for_token(registry, token[:-2] + "xx")
    with pytest.raises(Exception):
        create_token(registry, AARHUS, kommune="461")        # not Aarhus' to give
    revoke_token(registry, AARHUS, info.token_id)
    with pytest.raises(TokenInvalid):
        operator_for_token(registry, token)


def test_a_kommune_token_sees_and_changes_only_its_own_devices(registry, served):
    mine, theirs = enroll(registry, "751"), enroll(registry, "461", lat=55.39, lon=10.38)
    aarhus, _ = create_token(registry, AARHUS, kommune="751")
    odense, _ = create_token(registry, ADMIN, kommune="461")
    texts = []
    # OS2iot push with each kommune's token; a push of the other kommune's device is rejected
    st, body = call(served, "POST", "/api/ingest/os2iot", aarhus, waste_event(mine.dev_eui, 1, fill_bp=9000))
    assert st == 200 and json.loads(body)["stored"] == 1 and json.loads(body)["alerts"][0]["kind"] == "full"
    st, body = call(served, "POST", "/api/ingest/os2iot", aarhus, waste_event(theirs.dev_eui, 1))
    assert st == 200 and json.loads(body)["stored"] == 0
    assert json.loads(body)["rejected"][0]["reason"] == "unknown_device"
    st, body = call(served, "POST", "/api/ingest/os2iot", odense, [waste_event(theirs.dev_eui, 1, fill_bp=9100)])
    assert st == 200
    for path in ("/api/devices", "/api/status", "/api/alerts", "/api/dashboard"):
        st, body = call(served, "GET", path, aarhus)
        assert st == 200, body
        assert mine.dev_eui in body and theirs.dev_eui not in body
        texts.append(body)
    st, body = call(served, "GET", f"/api/devices/{theirs.dev_eui}", aarhus)
    assert st == 404
    st, body = call(served, "PATCH", f"/api/devices/{theirs.dev_eui}", aarhus, {"site": "moved by Aarhus"})
    assert st == 404 and registry.get_device(ADMIN, theirs.dev_eui).site != "moved by Aarhus"
    st, body = call(served, "PATCH", f"/api/devices/{mine.dev_eui}", aarhus, {"site": "Park Allé 2"})
    assert st == 200 and registry.get_device(AARHUS, mine.dev_eui).site == "Park Allé 2"
    st, body = call(served, "GET", f"/api/devices/{mine.dev_eui}?readings=2", aarhus)
    assert st == 200 and len(json.loads(body)["readings"]) == 2
    texts.append(body)
    their_alert = json.loads(call(served, "GET", "/api/alerts", odense)[1])["alerts"][0]["id"]
    assert call(served, "POST", f"/api/alerts/{their_alert}/ack", aarhus)[0] == 404
    # asking for another kommune by name is refused, 403 with what to do, and shows nothing of it
    for path in ("/api/devices", "/api/status", "/api/alerts", "/api/dashboard"):
        st, body = call(served, "GET", path + "?kommune=461", aarhus)
        assert st == 403 and theirs.dev_eui not in body and json.loads(body)["hint"], (path, st, body)
    # no token, a bad token: 401, and the bad token is not echoed
    assert call(served, "GET", "/api/devices")[0] == 401
    st, body = call(served, "GET", "/api/devices", "bys_00000000_" + "A" * 43)
    assert st == 401 and "AAAA" not in body
    # no secret anywhere: no AppKey, no token, no token hash
    with registry.db.read() as s:
        hashes = [t.token_hash for t in s.scalars(select(ApiToken))]
    app_keys = [k.hex() for k in registry.app_keys(ADMIN, [mine.dev_eui, theirs.dev_eui], purpose="test").values()]
    for text in texts:
        for secret in [aarhus, odense, *hashes, *app_keys, *[k.upper() for k in app_keys]]:
            assert secret not in text
        assert "app_key" not in text


def raw_call(server, body: bytes, token):
    req = urllib.request.Request(server.url + "/api/ingest/os2iot", data=body, method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_os2iot_push_is_200_with_counts_and_4xx_only_for_the_senders_faults(registry, served):
    """OS2iot logs every non-2xx answer as a failed push (and never retries): what the data says (ignored,
    unknown, undecodable) is counted in a 200; a body that is no event at all or a bad token is a 4xx."""
    dev = enroll(registry, "751")
    token, _ = create_token(registry, AARHUS, kommune="751")
    mac_only = dict(waste_event(dev.dev_eui, 2), fPort=0, data="")
    fuota = waste_event(dev.dev_eui, 3, f_port=201)
    garbled = dict(waste_event(dev.dev_eui, 4), data="AAEC")              # base64, but no payload frame
    unknown = waste_event("70B3D5FFFE0000AA", 5)
    no_eui = {k: v for k, v in waste_event(dev.dev_eui, 6).items() if k != "deviceInfo"}
    st, body = call(served, "POST", "/api/ingest/os2iot", token,
                    [waste_event(dev.dev_eui, 1), mac_only, fuota, garbled, unknown, no_eui])
    out = json.loads(body)
    assert st == 200, body
    assert out["stored"] == 1 and out["ignored"] == {"mac_only": 1, "other_fport": 1}
    assert sorted(r["reason"] for r in out["rejected"]) == ["bad_dev_eui", "bad_payload", "unknown_device"]
    # nothing stored at all is still the data's story, not a failed push
    st, body = call(served, "POST", "/api/ingest/os2iot", token, [mac_only, unknown])
    assert st == 200 and json.loads(body)["stored"] == 0 and json.loads(body)["ignored"] == {"mac_only": 1}
    # the sender's faults
    assert raw_call(served, b"{not json", token)[0] == 400
    assert raw_call(served, b"42", token)[0] == 400
    assert raw_call(served, b'["an event?"]', token)[0] == 400
    assert raw_call(served, json.dumps(waste_event(dev.dev_eui, 7)).encode(), "bys_00000000_" + "A" * 43)[0] == 401
