"""GET /dashboard: the web dashboard (one page, no external resources: it works offline); its data comes
from GET /api/dashboard with the kommune's bearer token, which the page asks for once and keeps in the
browser's session storage.

The map is an SVG drawn in the page: the 98 kommuner's points (fleet/data/kommuner.csv) as a faint outline
of Denmark, and the devices as dots by latitude/longitude, coloured by fill level, ringed red on an alert.
No tile server is needed. Fill levels, alerts and rollout progress are listed beside it.
"""

from starlette.responses import Response
from starlette.routing import Route

from ...registry.kommuner import all_kommuner
from ...telemetry import fleet_status
from ..web import json_response, query, threaded
from . import _telemetry as T

_HEADERS = {"Cache-Control": "no-store", "Content-Security-Policy":
            "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src 'self' data:"}


def routes(ctx):
    async def page(req):
        return Response(PAGE.encode(), 200, _HEADERS, media_type="text/html; charset=utf-8")

    def data(req, body):
        op, q = T.operator(ctx, req), query(req)
        st = T.store(ctx)
        status = fleet_status(T.registry(ctx), op, kommune=q.get("kommune") or None, rules=st.rules,
                              with_devices=True)
        alerts = st.alerts(op, kommune=q.get("kommune") or None, limit=200)
        status["alert_list"] = alerts
        status["kommune_points"] = [{"kode": k.kode, "navn": k.navn, "lat": k.lat, "lon": k.lon}
                                    for k in all_kommuner().values()]
        status["operator"] = {"kommune": op.kommune, "role": op.role}
        return json_response(status)

    return [Route("/dashboard", page, methods=["GET"]),
            Route("/api/dashboard", threaded(data), methods=["GET"])]


PAGE = r"""<!doctype html>
<html lang="da"><head><meta charset="utf-8"><title>Bysans fleet</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
 header{background:#17324d;color:#fff;padding:10px 18px;display:flex;gap:16px;align-items:baseline}
 header h1{font-size:18px;margin:0} header .sub{opacity:.8}
 main{display:grid;grid-template-columns:minmax(420px,1.3fr) 1fr;gap:14px;padding:14px}
 section{background:#fff;border-radius:8px;padding:12px 14px;box-shadow:0 1px 2px #0002}
 h2{font-size:15px;margin:0 0 8px}
 .tiles{display:flex;gap:10px;flex-wrap:wrap;margin-bottom:8px}
 .tile{background:#eef2f7;border-radius:6px;padding:6px 10px;min-width:86px}
 .tile b{display:block;font-size:20px} .tile.warn b{color:#b45309} .tile.crit b{color:#b91c1c}
 table{border-collapse:collapse;width:100%} td,th{padding:3px 6px;text-align:left;border-bottom:1px solid #e5e7eb;font-size:13px}
 .bar{background:#e5e7eb;border-radius:3px;height:10px;width:120px;display:inline-block;vertical-align:middle}
 .bar i{display:block;height:100%;border-radius:3px}
 .critical{color:#b91c1c;font-weight:600} .warning{color:#b45309}
 #login{max-width:420px;margin:60px auto} #login input{width:100%;padding:8px;margin:8px 0;font:inherit}
 svg{width:100%;height:auto;background:#eaf3fb;border-radius:6px}
 .legend span{display:inline-block;margin-right:12px} .dot{display:inline-block;width:10px;height:10px;border-radius:50%;vertical-align:middle;margin-right:4px}
 #error{color:#b91c1c}
</style></head>
<body>
<header><h1>Bysans fleet</h1><span class="sub" id="scope"></span><span class="sub" id="updated"></span></header>
<div id="login" hidden><section><h2>Sign in</h2>
 <p>Paste your kommune's API token (<code>fleet tokens create --kommune K</code>).</p>
 <form id="loginform"><input id="token" type="password" autocomplete="off" placeholder="bys_..." aria-label="API token">
 <button type="submit">Show my fleet</button></form><p id="error"></p></section></div>
<main id="app" hidden>
 <div>
  <section><div class="tiles" id="tiles"></div>
   <h2>Map</h2><div id="maps"></div>
   <p class="legend"><span><i class="dot" style="background:#16a34a"></i>under 50 %</span><span><i class="dot" style="background:#f59e0b"></i>50-80 %</span><span><i class="dot" style="background:#dc2626"></i>full</span><span><i class="dot" style="background:#6b7280"></i>env / no reading</span><span><i class="dot" style="background:#fff;border:2px solid #b91c1c"></i>alert</span></p>
  </section>
 </div>
 <div>
  <section><h2>Alerts</h2><table id="alerts"></table></section>
  <section style="margin-top:14px"><h2>Fill levels</h2><table id="fill"></table></section>
  <section style="margin-top:14px"><h2>Rollouts</h2><div id="rollouts"></div></section>
  <section style="margin-top:14px"><h2>Diagnostics per release</h2><table id="releases"></table></section>
 </div>
</main>
<script>
"use strict";
const KEY = "bysans.token";
function el(tag, attrs, text) { const e = document.createElement(tag); for (const k in attrs || {}) e.setAttribute(k, attrs[k]); if (text !== undefined) e.textContent = text; return e; }
function svgEl(tag, attrs) { const e = document.createElementNS("http://www.w3.org/2000/svg", tag); for (const k in attrs) e.setAttribute(k, attrs[k]); return e; }
function fillColor(d) { if (d.fill_bp === null || d.fill_bp === undefined) return "#6b7280"; return d.fill_bp >= 8000 ? "#dc2626" : d.fill_bp >= 5000 ? "#f59e0b" : "#16a34a"; }
function when(t) { return t ? t.slice(0, 16).replace("T", " ") : "-"; }

function project(points, w, h, pad) {
  const lats = points.map(p => p.lat), lons = points.map(p => p.lon);
  let la0 = Math.min(...lats), la1 = Math.max(...lats), lo0 = Math.min(...lons), lo1 = Math.max(...lons);
  const k = Math.cos((la0 + la1) / 2 * Math.PI / 180);           // equirectangular, true at mid-latitude
  let dx = (lo1 - lo0) * k || 0.01, dy = (la1 - la0) || 0.01;
  const s = Math.min((w - 2 * pad) / dx, (h - 2 * pad) / dy);
  const ox = (w - dx * s) / 2, oy = (h - dy * s) / 2;
  return p => [ox + (p.lon - lo0) * k * s, h - (oy + (p.lat - la0) * s)];
}

function drawMap(title, kommuner, devices, alerted, w, h) {
  const box = el("div"); box.appendChild(el("h2", {}, title));
  const svg = svgEl("svg", {viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": title});
  const frame = devices.length ? devices : kommuner;
  const pr = project(frame, w, h, 24);
  for (const k of kommuner) {
    const [x, y] = pr(k);
    if (x < -20 || y < -20 || x > w + 20 || y > h + 20) continue;
    const c = svgEl("circle", {cx: x, cy: y, r: devices.length ? 5 : 4, fill: "#c7d5e3"});
    const t = svgEl("title", {}); t.textContent = k.kode + " " + k.navn; c.appendChild(t); svg.appendChild(c);
    if (devices.length) { const lb = svgEl("text", {x: x + 7, y: y + 4, "font-size": 11, fill: "#64748b"}); lb.textContent = k.navn; svg.appendChild(lb); }
  }
  for (const d of devices) {
    const [x, y] = pr(d);
    const c = svgEl("circle", {cx: x, cy: y, r: 7, fill: fillColor(d), stroke: alerted.has(d.dev_eui) ? "#b91c1c" : "#fff", "stroke-width": alerted.has(d.dev_eui) ? 3 : 1.5, "data-dev-eui": d.dev_eui, class: "device"});
    const t = svgEl("title", {}); t.textContent = `${d.name} - ${d.site}` + (d.fill_bp != null ? ` - ${(d.fill_bp / 100).toFixed(0)} %` : "");
    c.appendChild(t); svg.appendChild(c);
  }
  box.appendChild(svg); return box;
}

function render(s) {
  document.getElementById("scope").textContent = s.operator.kommune ? "kommune " + s.kommuner.map(k => k.kode + " " + k.navn).join(", ") : "all kommuner";
  document.getElementById("updated").textContent = "updated " + when(s.generated_at) + " UTC";
  const t = s.totals, tiles = document.getElementById("tiles"); tiles.textContent = "";
  for (const [label, n, cls] of [["devices", t.devices, ""], ["active", t.active, ""], ["full bins", t.full, t.full ? "warn" : ""], ["silent", t.silent, t.silent ? "warn" : ""], ["low battery", t.low_battery, t.low_battery ? "warn" : ""], ["no network", t.no_network || 0, t.no_network ? "warn" : ""], ["open alerts", t.open_alerts, s.alerts.fire ? "crit" : t.open_alerts ? "warn" : ""]]) {
    const d = el("div", {class: "tile " + cls}); d.appendChild(el("b", {}, String(n))); d.appendChild(document.createTextNode(label)); tiles.appendChild(d);
  }
  const placed = s.devices.filter(d => d.latitude != null && d.longitude != null).map(d => Object.assign({lat: d.latitude, lon: d.longitude}, d));
  const alerted = new Set(s.alert_list.map(a => a.dev_eui));
  const maps = document.getElementById("maps"); maps.textContent = "";
  maps.appendChild(drawMap("Devices", s.kommune_points, placed, alerted, 640, 380));
  const mine = new Set(s.kommuner.map(k => k.kode));
  const overview = drawMap("Denmark", s.kommune_points.map(k => Object.assign({}, k)), [], alerted, 320, 260);
  for (const c of overview.querySelectorAll("circle")) { if (mine.has(c.textContent.slice(0, 4))) { c.setAttribute("fill", "#17324d"); c.setAttribute("r", 6); } }
  maps.appendChild(overview);

  const at = document.getElementById("alerts"); at.textContent = "";
  if (!s.alert_list.length) at.appendChild(el("tr")).appendChild(el("td", {}, "no open alerts"));
  for (const a of s.alert_list) {
    const tr = el("tr", {class: "alert"}); tr.appendChild(el("td", {class: a.severity}, a.kind));
    tr.appendChild(el("td", {}, a.site || a.dev_eui)); tr.appendChild(el("td", {}, a.message)); tr.appendChild(el("td", {}, when(a.opened_at)));
    at.appendChild(tr);
  }
  const ft = document.getElementById("fill"); ft.textContent = "";
  const bins = s.devices.filter(d => d.fill_bp != null).sort((a, b) => b.fill_bp - a.fill_bp).slice(0, 25);
  if (!bins.length) ft.appendChild(el("tr")).appendChild(el("td", {}, "no bin has reported yet"));
  for (const d of bins) {
    const tr = el("tr", {class: "bin"}); tr.appendChild(el("td", {}, d.site));
    const td = el("td"), bar = el("span", {class: "bar"}), fill = el("i", {style: `width:${Math.min(100, d.fill_bp / 100)}%;background:${fillColor(d)}`});
    bar.appendChild(fill); td.appendChild(bar); td.appendChild(document.createTextNode(" " + (d.fill_bp / 100).toFixed(0) + " %")); tr.appendChild(td);
    tr.appendChild(el("td", {}, d.full_at ? (d.overdue ? "expected full since " : "full at ") + when(d.full_at) : "")); ft.appendChild(tr);
  }
  const ro = document.getElementById("rollouts"); ro.textContent = "";
  if (s.rollouts === null) ro.appendChild(el("p", {}, "not tracked in this registry"));
  else if (!s.rollouts.length) ro.appendChild(el("p", {}, "no rollouts"));
  else for (const r of s.rollouts) {
    const p = el("p", {class: "rollout"}); p.appendChild(el("b", {}, `${r.name} (${r.state || ""}) `));
    const bar = el("span", {class: "bar"}); bar.appendChild(el("i", {style: `width:${r.done_pct}%;background:#2563eb`})); p.appendChild(bar);
    p.appendChild(document.createTextNode(` ${r.done_pct.toFixed(0)} % of ${r.total} - ` + Object.entries(r.devices).map(([k, v]) => `${k} ${v}`).join(", ")));
    ro.appendChild(p);
  }
  const rt = document.getElementById("releases"); rt.textContent = "";
  if (!s.releases || !s.releases.length) rt.appendChild(el("tr")).appendChild(el("td", {}, "no check-in has carried diagnostics yet"));
  else {
    const head = el("tr"); for (const h of ["release", "board", "devices", "resets / check-in", "watchdog / check-in", "lowest heap", "exceptions"]) head.appendChild(el("th", {}, h)); rt.appendChild(head);
    for (const r of s.releases) {
      const tr = el("tr", {class: "release"});
      const per = v => v === null ? "-" : v.toFixed(2);
      for (const v of [r.version, r.board, String(r.devices), per(r.resets_per_checkin), per(r.watchdog_per_checkin),
                       r.heap_min === null ? "-" : r.heap_min + " B", Object.entries(r.exceptions).map(([h, n]) => `#${h} x${n}`).join(", ") || "-"])
        tr.appendChild(el("td", {}, v));
      rt.appendChild(tr);
    }
  }
}

async function load() {
  const token = sessionStorage.getItem(KEY);
  if (!token) { document.getElementById("login").hidden = false; document.getElementById("app").hidden = true; return; }
  const r = await fetch("/api/dashboard" + location.search, {headers: {Authorization: "Bearer " + token}});
  if (r.status === 401) { sessionStorage.removeItem(KEY); document.getElementById("error").textContent = "That token was not accepted."; document.getElementById("login").hidden = false; return; }
  const s = await r.json();
  document.getElementById("login").hidden = true; document.getElementById("app").hidden = false;
  render(s); document.body.setAttribute("data-loaded", "1");
}
document.getElementById("loginform").addEventListener("submit", ev => { ev.preventDefault(); sessionStorage.setItem(KEY, document.getElementById("token").value.trim()); load(); });
load(); setInterval(() => { if (sessionStorage.getItem(KEY)) load(); }, 60000);
</script>
</body></html>
"""
