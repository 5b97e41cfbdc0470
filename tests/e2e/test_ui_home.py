"""The home page (`/`, SPEC §8b: recent activity, issue #6), the heatmap widget and the query bar's parse-error
markers in a real browser. On a server evaluating monitors every second and loaded by `plant` (logs with XSS
payloads through the Datadog log intake, a trace through the OTel SDK, DogStatsD metrics, a monitor and a
dashboard through `datadog-api-client`) plus an alerting monitor (its name an XSS payload), the home page lists
the alerting monitor and its transition, the planted error logs (their text, the payload literal), the traced
service, the dashboards, and nothing executes; a heatmap widget of a DogStatsD distribution draws painted cells on
its canvas; a malformed log search (and metric query) shows a marker under the character at the position the API's
400 names, which goes away when the query is edited."""

import re
import time

import pytest
import requests
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_options import MonitorOptions
from datadog_api_client.v1.model.monitor_thresholds import MonitorThresholds
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.model_utils import validate_and_convert_types

from conftest import Server, api_clients, wait_until
from ui_helpers import SCREENSHOTS, XSS, browse, plant, problems

ALERT_XSS = "<img src=q onerror=window.__xss=7>"
BAD_LOG_QUERY = "service:(a OR"
BAD_METRIC_QUERY = "avg:ui.checkout.latency{*"
HEAT_METRIC = "ui.home.latency"


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A server evaluating monitors every second, loaded by `plant`, with an alerting monitor and a distribution."""
    server = Server(tmp_path_factory.mktemp("home") / "data", extra_args=["--alerts-eval-interval", "1s"]).start()
    try:
        data = plant(server)
        run = data["run"]
        api, dog = api_clients(server)
        data["alert_name"] = f"Home alerting {run} {ALERT_XSS}"
        with api:
            created = MonitorsApi(api).create_monitor(body=Monitor(
                name=data["alert_name"], type=MonitorType.METRIC_ALERT,
                query=f"avg(last_5m):avg:ui.home.gauge{{run:{run}}} > 10",
                message=f"home alert {XSS['monitor message']}",
                options=MonitorOptions(thresholds=MonitorThresholds(critical=10.0)),
            ))
        data["alert_id"] = created.id

        def alerting():
            dog.gauge("ui.home.gauge", 50, tags=[f"run:{run}"])
            dog.flush()
            m = requests.get(f"{server.http}/api/v1/monitor/{created.id}?group_states=all", timeout=10).json()
            return m if m.get("overall_state") == "Alert" else None

        wait_until(alerting, timeout=30, interval=0.5, what="the home monitor alerting")

        # A distribution through DogStatsD: a spread of latencies, for the heatmap.
        for i in range(200):
            dog.distribution(HEAT_METRIC, 1 + (i % 50) * (i % 7 + 1), tags=[f"run:{run}"])
        dog.flush()
        dog.close_socket()
        now = int(time.time())
        wait_until(lambda: server.series(f"p90:{HEAT_METRIC}{{run:{run}}}", now - 600, now + 60), timeout=10,
                   what="the distribution")
        yield server, data
    finally:
        server.stop()


def test_home_shows_recent_activity(home):
    server, data = home
    run = data["run"]
    (r,) = browse(server.http, [
        {"path": "/?from=now-1h&to=now", "waitFor": "[data-testid=home-monitor-row]",
         "testids": ["home-monitor-row", "home-transition-row", "home-log-row", "home-service-row",
                     "home-dashboard-row", "home-panel-error", "histogram-bar"],
         "actions": [{"waitForRows": "home-log-row"}, {"waitForRows": "home-service-row"},
                     {"waitForRows": "home-dashboard-row"}, {"waitForRows": "home-transition-row"},
                     {"waitForRows": "histogram-bar"}],
         "screenshot": str(SCREENSHOTS / "home.png"), "fullPage": True},
    ])
    assert not problems(r), problems(r)
    texts = r["texts"]
    assert r["counts"]["home-panel-error"] == 0, texts["home-panel-error"]
    # The alerting monitor (its name, a payload, as text), and not the planted one, which is OK.
    assert any(data["alert_name"] in t and "Alert" in t for t in texts["home-monitor-row"]), texts["home-monitor-row"]
    assert not any(data["monitor_name"] in t for t in texts["home-monitor-row"]), texts["home-monitor-row"]
    assert any(data["alert_name"] in t and "Alert" in t for t in texts["home-transition-row"]), texts
    # The planted error logs, the payload as literal text; no info log.
    logs = texts["home-log-row"]
    assert any(XSS["log message"] in t for t in logs), logs
    assert any(f"stock sync failed {run}" in t for t in logs), logs
    assert not any(f"checkout ok order=1 {run}" in t for t in logs), logs
    assert any(data["svc_trace"] in t for t in texts["home-service-row"]), texts["home-service-row"]
    dashboards = texts["home-dashboard-row"]
    assert any(f"UI e2e {run}" in t for t in dashboards) and any("Host overview" in t for t in dashboards), dashboards
    assert r["counts"]["histogram-bar"] > 0


def test_home_error_logs_link_to_the_log_explorer(home):
    server, data = home
    (r,) = browse(server.http, [
        {"path": "/?from=now-4h&to=now", "waitFor": "[data-testid=home-log-row]",
         "actions": [{"click": "[data-testid=home-log-row] a"}, {"waitForURL": "/logs"},
                     {"waitForRows": "log-row", "allContain": "error"}]},
    ])
    assert not problems(r), problems(r)
    assert "/logs?" in r["url"] and "query=status%3Aerror" in r["url"] and "from=now-4h" in r["url"], r["url"]


def test_home_empty_states(tmp_path_factory):
    """On an empty server every panel says there is nothing (no error, no endless loading)."""
    server = Server(tmp_path_factory.mktemp("home-empty") / "data").start()
    try:
        (r,) = browse(server.http, [
            {"path": "/", "waitFor": "[data-testid=home-empty]", "testids": ["home-empty", "home-panel-error"],
             "actions": [{"waitForRows": "home-empty", "count": 5}]},
        ])
    finally:
        server.stop()
    assert not problems(r), problems(r)
    assert r["counts"]["home-panel-error"] == 0
    # Monitors, transitions, error logs, services, log volume; the shipped dashboards are listed.
    assert "No monitors yet." in r["text"] and "No error logs in this time range." in r["text"], r["text"]


def test_heatmap_widget_draws_cells(home):
    server, data = home
    run = data["run"]
    api, _ = api_clients(server)
    body = {"title": f"Heatmap {run}", "layout_type": "ordered", "widgets": [
        {"definition": {"type": "heatmap", "title": "Latency heatmap",
                        "requests": [{"q": f"avg:{HEAT_METRIC}{{run:{run}}}"}]}},
        {"definition": {"type": "heatmap", "title": "Gauge heatmap",
                        "requests": [{"q": "avg:ui.checkout.latency{*} by {service}"}]}},
    ]}
    with api:
        dash = validate_and_convert_types(body, (Dashboard,), ["body"], True, True, api.configuration)
        dash_id = DashboardsApi(api).create_dashboard(body=dash).id
    sel = "[data-testid=heatmap-canvas]"
    (r,) = browse(server.http, [
        {"path": f"/dashboards/{dash_id}", "waitFor": sel, "testids": ["widget-error"],
         "actions": [{"waitForRows": "heatmap-canvas", "count": 2},
                     {"waitFor": f"{sel}[data-cells='0']", "state": "detached"}],
         "attributes": [{"selector": sel, "names": ["data-cells", "data-columns", "data-source", "data-scale"]}],
         "canvasPixels": [sel],
         "screenshot": str(SCREENSHOTS / "dashboard-heatmap.png")},
    ])
    # The gauge's percentile query is refused (percentiles need a distribution): the widget falls back to its series.
    probe = lambda f: f.get("status") == 400 and "p50%3Aui.checkout.latency" in f["url"]  # noqa: E731
    assert not problems(r, allow=probe), problems(r, allow=probe)
    assert r["counts"]["widget-error"] == 0, r["texts"]["widget-error"]
    heat = {a["data-source"]: a for a in r["attributes"][sel]}
    assert set(heat) == {"quantiles", "series"}, heat
    # 1 … 350 spans more than a decade: a log scale; the 200 samples spread over several cells.
    assert int(heat["quantiles"]["data-cells"]) > 3 and heat["quantiles"]["data-scale"] == "log", heat
    assert int(heat["quantiles"]["data-columns"]) >= 1, heat
    assert int(heat["series"]["data-cells"]) > 0, heat
    assert all(n > 0 for n in r["canvasPixels"][sel]), r["canvasPixels"]


def api_position(resp):
    assert resp.status_code == 400, resp.text
    (msg,) = resp.json()["errors"]
    m = re.search(r"at position (\d+)", msg)
    assert m, msg
    return m.group(1)


def test_parse_error_marker(home):
    server, _ = home
    log_pos = api_position(requests.post(server.http + "/api/v2/logs/events/search", timeout=10, json={
        "filter": {"query": BAD_LOG_QUERY, "from": "now-1h", "to": "now"}, "page": {"limit": 10}}))
    now = int(time.time())
    metric_pos = api_position(requests.get(server.http + "/api/v1/query", timeout=10, params={
        "query": BAD_METRIC_QUERY, "from": now - 3600, "to": now}))
    marker = "[data-testid=query-error-marker]"
    metric_marker = "[data-testid=metric-query-error-marker]"
    q = requests.utils.quote
    bad_400 = lambda f: f.get("status") == 400  # noqa: E731
    shown, edited, metric = browse(server.http, [
        {"path": f"/logs?query={q(BAD_LOG_QUERY)}", "waitFor": marker, "testids": ["query-error"],
         "attributes": [{"selector": marker, "names": ["data-position", "data-index", "title"]}],
         "screenshot": str(SCREENSHOTS / "logs-parse-error.png")},
        {"path": f"/logs?query={q(BAD_LOG_QUERY)}", "waitFor": marker,
         "actions": [{"fill": "[data-testid=query-input]", "text": BAD_LOG_QUERY + " b)"},
                     {"waitFor": marker, "state": "detached"}]},
        {"path": f"/metrics?query={q(BAD_METRIC_QUERY)}", "waitFor": metric_marker,
         "attributes": [{"selector": metric_marker, "names": ["data-position"]}],
         "screenshot": str(SCREENSHOTS / "metrics-parse-error.png")},
    ])
    for r in (shown, edited, metric):
        assert not problems(r, allow=bad_400), problems(r, allow=bad_400)
    (attrs,) = shown["attributes"][marker]
    assert attrs["data-position"] == log_pos and attrs["data-index"] == log_pos, attrs
    assert f"at position {log_pos}" in attrs["title"], attrs
    assert any(f"at position {log_pos}" in t for t in shown["texts"]["query-error"]), shown["texts"]
    (attrs,) = metric["attributes"][metric_marker]
    assert attrs["data-position"] == metric_pos, attrs


def test_no_payload_runs_on_home(home):
    """Every payload planted (log message, tag, attribute, span name, monitor message and name) stays text."""
    server, data = home
    results = browse(server.http, [
        {"path": "/", "waitFor": "[data-testid=home-log-row]", "actions": [{"waitForRows": "home-service-row"}]},
        {"path": f"/monitors/{data['alert_id']}", "waitForText": "home alert"},
    ])
    for r in results:
        assert not problems(r), problems(r)
        assert r["xss"] is False and not r["injected"], r
