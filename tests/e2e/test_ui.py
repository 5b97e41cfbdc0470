"""The web UI (issue #6, SPEC §8b, §9) in a real browser: Debian's chromium driven by playwright-core
(tests/e2e/browser/run.mjs) against the real binary, loaded with real data by the clients users use: logs through
the Datadog log intake, a metric through DogStatsD (`datadog`), a trace through the OpenTelemetry SDK, a monitor
through `datadog-api-client`. XSS payloads are planted in a log message, a tag, an attribute, a span name and a
monitor message; no view may run them (no dialog, `window.__xss` unset, no event-handler attribute or script
carrying them in the DOM) and each must show up as literal text. Screenshots of every view go to
tests/e2e/screenshots/ (or $SIGHTLINE_SCREENSHOTS)."""

import json
import re
from urllib.parse import parse_qs, urlparse

import requests

from ui_helpers import SCREENSHOTS, browse, fill, problems, ui  # noqa: F401 (ui is a fixture)

# Every route of SPEC §8b, with what it must show. Templates are filled from the planted data (`Planted`):
#   wait_for      CSS selector that appears once the view has its data (null: wait for the network to idle)
#   wait_text     text the page must come to contain (when no selector fits)
#   actions       run.mjs actions after the wait
#   text          strings the page's text must contain (literally: payloads as text, not markup)
#   counts        {testid: n}: at least n such elements ("=n": exactly n)
#   row_text      {testid: string}: some such element's text contains it
# The metrics explorer and the dashboards only have to render without errors in this increment: their data
# checks (one line per group, every widget drawn) come with those views.
ROUTES = [
    dict(name="home", path="/", wait_for="[data-testid=home-log-row]",
         text=["{xss_log_message}", "{svc_a}", "UI e2e {run}", "Host overview"]),
    dict(name="logs", path="/logs", wait_for="[data-testid=log-row]", counts={"log-row": 5},
         text=["{xss_log_message}", "{svc_a}", "{svc_b}"]),
    dict(name="logs-detail", path="/logs", wait_for="[data-testid=log-row]",
         actions=[{"click": "[data-testid=log-row]:has-text(\"window.__xss=1\")"},
                  {"waitFor": "[data-testid=log-detail]"}],
         text=["{xss_log_tag}", "{xss_log_attribute}"]),
    dict(name="metrics", path="/metrics?query={metric_query}"),
    dict(name="apm", path="/apm", wait_for="[data-testid=service-row]", row_text={"service-row": "{svc_trace}"}),
    dict(name="trace", path="/apm/traces/{trace_id}", wait_for="[data-testid=span-row]", counts={"span-row": "=3"},
         text=["{xss_span_name}", "db.query", "GET /checkout"]),
    dict(name="monitors", path="/monitors", wait_for="[data-testid=monitor-row]",
         row_text={"monitor-row": "{monitor_name}"}),
    dict(name="monitor", path="/monitors/{monitor_id}", wait_text="{monitor_query}",
         text=["{monitor_name}", "{monitor_query}", "{xss_monitor_message}"]),
    dict(name="dashboards", path="/dashboards", wait_for="[data-testid=dashboard-row]",
         text=["UI e2e {run}", "Host overview", "Service overview", "Sightline self-monitoring"]),
    dict(name="dashboard", path="/dashboards/{dashboard_id}", wait_for="[data-testid=widget]",
         text=["UI e2e {run}", "note {run}"]),
]



def test_every_route_renders_without_errors(ui):
    server, data = ui
    routes = [fill(r, data) for r in ROUTES]
    visits = [{"path": r["path"], "waitFor": r.get("wait_for"), "waitForText": r.get("wait_text"),
               "actions": r.get("actions", []), "screenshot": str(SCREENSHOTS / f"{r['name']}.png")}
              for r in routes]
    results = browse(server.http, visits)
    failures = {}
    for route, res in zip(routes, results):
        bad = problems(res)
        for s in route.get("text", []):
            if s not in res["text"]:
                bad.setdefault("missing text", []).append(s)
        for testid, want in route.get("counts", {}).items():
            got = res["counts"].get(testid, 0)
            exact = isinstance(want, str) and want.startswith("=")
            n = int(str(want).lstrip("="))
            if (got != n) if exact else (got < n):
                bad.setdefault("counts", []).append(f"{testid}: {got}, want {'' if exact else '>='}{n}")
        for testid, s in route.get("row_text", {}).items():
            if not any(s in t for t in res["texts"].get(testid, [])):
                bad.setdefault("rows", []).append(f"no {testid} contains {s!r}: {res['texts'].get(testid)}")
        if bad:
            failures[f"{route['name']} {route['path']}"] = bad
    assert not failures, json.dumps(failures, indent=1)
    for r in routes:
        assert (SCREENSHOTS / f"{r['name']}.png").stat().st_size > 0


def test_query_bar_filters_logs(ui):
    server, data = ui
    svc_a, svc_b = data["svc_a"], data["svc_b"]
    filtered, malformed = browse(server.http, [
        {"path": "/logs", "waitFor": "[data-testid=log-row]", "screenshot": str(SCREENSHOTS / "logs-filtered.png"),
         "actions": [{"fill": "[data-testid=query-input]", "text": f"service:{svc_a}"},
                     {"press": "Enter", "selector": "[data-testid=query-input]"},
                     {"waitForURL": "query="}, {"waitForRows": "log-row", "allContain": svc_a}]},
        {"path": "/logs", "waitFor": "[data-testid=log-row]", "screenshot": str(SCREENSHOTS / "logs-query-error.png"),
         "actions": [{"fill": "[data-testid=query-input]", "text": "status:("},
                     {"press": "Enter", "selector": "[data-testid=query-input]"},
                     {"waitFor": "[data-testid=query-error]"}],
         "testids": ["query-error"]},
    ])

    assert not problems(filtered), problems(filtered)
    assert parse_qs(urlparse(filtered["url"]).query).get("query") == [f"service:{svc_a}"], filtered["url"]
    rows = filtered["texts"]["log-row"]
    assert len(rows) == data["svc_a_logs"], rows
    assert all(svc_a in t and svc_b not in t for t in rows), rows

    # The malformed query: the search API answers 400 (expected, and the only failure allowed), the bar says
    # where the query went wrong.
    def search_400(f):
        return f.get("status") == 400 and "/api/v2/logs/events/search" in f["url"]

    assert not problems(malformed, allow=search_400), problems(malformed, allow=search_400)
    assert parse_qs(urlparse(malformed["url"]).query).get("query") == ["status:("], malformed["url"]
    errors = malformed["texts"]["query-error"]
    assert len(errors) == 1 and "position" in errors[0], errors


def test_security_headers(ui):
    server, _ = ui
    r = requests.get(server.http + "/logs", headers={"Accept": "text/html"}, timeout=10)
    assert r.status_code == 200, r.text[:500]
    assert r.headers["content-type"].startswith("text/html"), r.headers
    csp = r.headers.get("content-security-policy", "")
    directives = {d.split()[0]: d.split()[1:] for d in (x.strip() for x in csp.split(";")) if d}
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, csp
    assert directives.get("script-src") == ["'self'"], csp
    assert "'unsafe-inline'" not in directives.get("style-src", directives.get("default-src", [])), csp
    # No inline script in the page itself (the policy would block it anyway).
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>\s*\S", r.text), r.text

    scripts = re.findall(r'<script[^>]*\bsrc="(/assets/[^"]+\.js)"', r.text)
    assert scripts, r.text
    for path in scripts:
        a = requests.get(server.http + path, timeout=10)
        assert a.status_code == 200, path
        assert "javascript" in a.headers["content-type"], a.headers
        assert "immutable" in a.headers.get("cache-control", ""), a.headers

    # /metrics is both the metrics explorer (for browsers) and Sightline's own Prometheus metrics (for scrapers).
    page = requests.get(server.http + "/metrics", headers={"Accept": "text/html"}, timeout=10)
    assert page.headers["content-type"].startswith("text/html"), page.headers
    prom = requests.get(server.http + "/metrics", timeout=10)
    assert prom.status_code == 200 and not prom.headers["content-type"].startswith("text/html"), prom.headers
    assert "# TYPE" in prom.text
