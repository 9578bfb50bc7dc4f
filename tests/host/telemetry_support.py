"""Shared by the telemetry tests: devices enrolled in Aarhus and Odense, events made by the real encoder,
a local webhook receiver."""

import json
import threading
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from fleet.registry import NewDevice
from lab import telemetry_samples as S
from provisioning.identity import new_identity
from test_registry_support import ADMIN


def enroll(reg, kommune="751", *, kind="waste", lat=56.1572, lon=10.2107, site="Park Allé 1"):
    ident = new_identity()
    reg.add_device(ADMIN, NewDevice(kommune=kommune, site=site, kind=kind, board="virtual", latitude=lat,
                                    longitude=lon), ident)
    return ident


def waste_event(dev_eui, f_cnt, *, fill_bp=4000, at=None, fmt="chirpstack", **kw):
    frame_kw = {k: kw.pop(k) for k in ("temp_cdeg", "batt_mv", "tilt", "fire") if k in kw}
    frame = S.waste_frame(S.filling_bin(fill_bp, **frame_kw), fill_rate_bp_h=kw.pop("rate", 150),
                          net_status=kw.pop("net_status", None))
    at = at or datetime.now(timezone.utc) - timedelta(minutes=5)
    if fmt == "tts":
        return S.tts_event(dev_eui, frame, f_cnt=f_cnt, at=at, **kw)
    return S.chirpstack_event(dev_eui, frame, f_cnt=f_cnt, at=at, **kw)


class WebhookReceiver:
    """A local HTTP server that keeps every JSON body POSTed to it."""

    def __init__(self):
        self.bodies = []
        self.got = threading.Condition()
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.got:
                    outer.bodies.append(json.loads(body))
                    outer.got.notify_all()
                self.send_response(204)
                self.end_headers()

            def log_message(self, *a):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def wait(self, n, timeout=10.0):
        with self.got:
            self.got.wait_for(lambda: len(self.bodies) >= n, timeout)
        return list(self.bodies)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
