"""The web dashboard in headless Chromium (Debian's chromium, driven by Playwright): a kommune's token
shows its devices on the offline map, fill levels, alerts, rollouts and diagnostics per release; a screenshot goes to
the test's directory (docs/dashboard.png with BYSANS_UPDATE_SCREENSHOT=1). Skipped when /usr/bin/chromium or
Playwright is missing (failed instead under BYSANS_REQUIRE_SERVICES=1, as in CI)."""

import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fleet.registry.tokens import create_token
from fleet.rollout import OtaStore
from fleet.serve.app import ServeContext, build_app
from fleet.serve.server import Server
from fleet.telemetry import TelemetryStore, parse_event
from telemetry_support import enroll, waste_event
from test_registry_support import AARHUS, key, key_env, registry  # noqa: F401 (fixtures)

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
SHOT = Path(__file__).resolve().parents[2] / "docs" / "dashboard.png"


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path / 'registry.sqlite'}"


def test_dashboard_shows_a_kommunes_fleet(registry, db_url, key_env, tmp_path):
    if not os.path.exists(CHROMIUM):
        if os.environ.get("BYSANS_REQUIRE_SERVICES") == "1":  # CI installs it (.ci/run): a skip would hide a gap
            pytest.fail(f"{CHROMIUM} is missing and this run requires the browser test")
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    store = TelemetryStore(registry)
    now = datetime.now(timezone.utc)
    bins = [("Park Allé 1", 56.1530, 10.2039, 9100, {}), ("Mølleparken", 56.1572, 10.2045, 4200, {}),
            ("Rådhuspladsen", 56.1529, 10.2050, 6400, {}), ("Ingerslevs Blvd", 56.1460, 10.2060, 2100, {"tilt": True}),
            ("Botanisk Have", 56.1610, 10.1960, 7300, {"batt_mv": 3300}), ("Ceres Byen", 56.1622, 10.2013, 8800, {}),
            ("Frederiksbjerg Torv", 56.1480, 10.2010, 1500, {})]
    events = []
    for i, (site, lat, lon, fill, kw) in enumerate(bins):
        dev = enroll(registry, "751", site=site, lat=lat, lon=lon)
        events.append(waste_event(dev.dev_eui, 10 + i, fill_bp=fill, at=now - timedelta(minutes=10 + i), **kw))
        if i == 0:
            first = dev.dev_eui
    enroll(registry, "461", site="Odense bin", lat=55.3961, lon=10.3888)
    store.ingest([parse_event(e, "os2iot") for e in events])
    ota = OtaStore(registry.db)  # one bin checks in with its diagnostics (docs/formats/diagnostics.md)
    for boots, wdt in ((1, 0), (3, 2)):
        ota.checkin({"device": first, "kommune": "0751", "board": "virtual", "version": "1.0.0", "counter": 100,
                     "release": None, "slot": "a", "state": "confirmed", "reason": None, "detail": "",
                     "target": None, "diag": {"v": 1, "reset_cause": "watchdog", "boots": boots,
                                              "watchdog_resets": wdt, "heap_min": 41000,
                                              "exception": "0badc0de"}})
    token, _ = create_token(registry, AARHUS, kommune="751")
    with Server(build_app(ServeContext(db_url=db_url))) as srv, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            blocked = []
            page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(srv.url)
                       else (blocked.append(route.request.url), route.abort()))
            page.goto(srv.url + "/dashboard")
            page.fill("#token", token)
            page.click("button[type=submit]")
            page.wait_for_selector("body[data-loaded='1']", timeout=15000)
            assert page.locator("circle.device").count() == len(bins)   # Aarhus' bins; not Odense's
            assert page.locator("tr.bin").count() == len(bins)
            alerts = page.locator("tr.alert").all_inner_texts()
            assert any("full" in a for a in alerts) and any("tilt" in a for a in alerts)
            assert any("battery" in a for a in alerts)
            assert "Odense bin" not in page.content()
            [release] = page.locator("tr.release").all_inner_texts()  # diagnostics per release
            assert "1.0.0" in release and "#0badc0de x1" in release and "41000 B" in release, release
            assert blocked == []   # offline: nothing outside this server was asked for
            shot = SHOT if os.environ.get("BYSANS_UPDATE_SCREENSHOT") == "1" else tmp_path / "dashboard.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000  # a rendered page, not an empty image
        finally:
            browser.close()
    assert SHOT.stat().st_size > 10_000
