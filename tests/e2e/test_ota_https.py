"""The device's OTA client over HTTPS: `fleet serve --cert/--key` and a virtual board that checks in,
downloads and installs an update through MicroPython's own TLS (mbedTLS in the unix port, as on an ESP32).
Authenticity still comes from the signatures and the check-in MAC; TLS keeps the traffic private."""

from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from lab.ota import HEAP, Lab, boot_into_slots, provision

from tlscert import self_signed as _cert

DEV = "70B3D57ED0000031"


def test_update_over_https(make_board, tmp_path):
    lab = Lab(tmp_path)
    r1 = lab.build("1.0.0")
    r2 = lab.derive(r1, "2.0.0")
    lab.publish(r1)
    lab.repo.mkdir(exist_ok=True)
    cert, key = _cert(tmp_path)
    ctx = ServeContext(repo_dir=lab.repo, db_url=lab.db_url, options={"sealer": lab.sealer})
    lab.server = Server(build_app(ctx), certfile=str(cert), keyfile=str(key)).start()
    try:
        assert lab.server.url.startswith("https://")
        board = make_board(heap=HEAP, scenario=lab.wifi_scenario)
        provision(board, r1, lab.root1, lab.config(DEV))
        r = boot_into_slots(board)
        assert r.poll()["state"] == "confirmed"  # a check-in over TLS, accepted by its MAC
        lab.publish(r2)
        assert r.poll() is None  # downloaded over TLS, installed, switched, reset
        st = r.state()
        assert (st["version"], st["slot"], st["trial"]) == ("2.0.0", "b", None)
        assert r.poll()["state"] == "confirmed"
        from fleet.rollout import OtaStore

        store = OtaStore.open(lab.db_url)
        try:
            assert store.device(DEV)["version"] == "2.0.0"
        finally:
            store.close()
    finally:
        lab.stop()
