"""The dashboards views (`/dashboards`, `/dashboards/{id}`, issue #6, SPEC §8, §8b) in a real browser: the shipped
"Host overview" dashboard draws every widget from host metrics sent through DogStatsD (`datadog`) for two hosts,
its template variables narrow it from the URL; a 10-widget dashboard created through `datadog-api-client`
(every widget type the app draws, a group, an unsupported type, a note carrying an XSS payload) renders all its
widgets with the payload as text; editing the JSON in the browser and saving changes the dashboard through the
API, and a bad save shows the API's 400 message."""

import json
import time
from pathlib import Path

import pytest
import requests
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.model_utils import validate_and_convert_types

from conftest import api_clients, wait_until
from ui_helpers import SCREENSHOTS, browse, problems, ui  # noqa: F401 (ui is a fixture)

REPO = Path(__file__).resolve().parents[2]
HOST_OVERVIEW = "sightline-host-overview"
NOTE_XSS = "<img src=x onerror=window.__xss=9>"
GAUGES = {"system.cpu.user": 20, "system.cpu.system": 5, "system.load.1": 1, "system.mem.used": 2e9,
          "system.disk.in_use": 0.4}
COUNTS = ("system.net.bytes_rcvd", "system.net.bytes_sent")
POINTS = 6  # per host and metric, one a minute, the newest a minute ago


def widget_count(widgets):
    return sum(1 + widget_count(w["definition"].get("widgets", [])) for w in widgets)


@pytest.fixture(scope="module")
def hosts(ui):
    """Host metrics for two hosts (gauges with timestamps, counts now) and a distribution, through DogStatsD."""
    server, data = ui
    run = data["run"]
    names = [f"dash-h1-{run}", f"dash-h2-{run}"]
    _, dog = api_clients(server)
    now = int(time.time())
    for n, host in enumerate(names, start=1):
        tags = [f"host:{host}", "env:e2e", f"run:{run}"]
        for metric, base in GAUGES.items():
            for m in range(POINTS):
                dog.gauge_with_timestamp(metric, base * n + m, now - 60 * (POINTS - m), tags=tags)
        for metric in COUNTS:
            dog.increment(metric, 1000 * n, tags=tags)
        for v in (10, 20, 30, 200):
            dog.distribution("ui.dash.latency", v * n, tags=tags)
    dog.flush()
    dog.close_socket()
    for q in ("avg:system.cpu.user{*} by {host}", "sum:system.net.bytes_sent{*} by {host}",
              "avg:system.disk.in_use{*} by {host}"):
        wait_until(lambda q=q: len(server.series(q, now - 3600, now + 60)) >= 2, timeout=10, what=q)
    wait_until(lambda: server.series("p90:ui.dash.latency{*}", now - 3600, now + 60), timeout=10,
               what="the distribution")
    return server, data, names


def ten_widgets(data):
    svc = data["svc_a"]
    return [
        {"definition": {"type": "timeseries", "title": "CPU by host",
                        "requests": [{"q": "avg:system.cpu.user{*} by {host}", "display_type": "line"}]}},
        {"definition": {"type": "query_value", "title": "Load", "precision": 2,
                        "requests": [{"q": "avg:system.load.1{*}", "aggregator": "max"}]}},
        {"definition": {"type": "toplist", "title": "Top memory",
                        "requests": [{"q": "top(avg:system.mem.used{*} by {host}, 5, 'mean', 'desc')"}]}},
        {"definition": {"type": "note", "content": f"First paragraph {NOTE_XSS}\n\nSecond paragraph"}},
        {"definition": {"type": "log_stream", "title": "Shop logs", "query": f"service:{svc}", "indexes": []}},
        {"definition": {"type": "trace_service", "title": "API service", "service": data["svc_trace"],
                        "env": "*", "span_name": "GET /checkout"}},
        {"definition": {"type": "group", "title": "A group", "layout_type": "ordered", "widgets": [
            {"definition": {"type": "note", "content": "inside the group"}},
            {"definition": {"type": "query_value", "title": "Disk (formula)", "requests": [
                {"response_format": "scalar", "formulas": [{"formula": "disk * 100"}],
                 "queries": [{"data_source": "metrics", "name": "disk", "query": "max:system.disk.in_use{*}",
                              "aggregator": "last"}]}]}},
        ]}},
        {"definition": {"type": "heatmap", "title": "Latency", "requests": [{"q": "avg:ui.dash.latency{*}"}]}},
        {"definition": {"type": "timeseries", "title": "Net (formula)", "requests": [
            {"response_format": "timeseries", "display_type": "bars", "formulas": [{"formula": "rx + tx"}],
             "queries": [{"data_source": "metrics", "name": "rx", "query": "sum:system.net.bytes_rcvd{*} by {host}"},
                         {"data_source": "metrics", "name": "tx", "query": "sum:system.net.bytes_sent{*} by {host}"}]}]}},
        {"definition": {"type": "hostmap", "title": "Host map",
                        "requests": {"fill": {"q": "avg:system.cpu.user{*} by {host}"}}}},
    ]


@pytest.fixture(scope="module")
def ten(hosts):
    """A dashboard of 10 widgets (12 with the group's), created through DashboardsApi; its id and widgets."""
    server, data, _ = hosts
    api, _ = api_clients(server)
    widgets = ten_widgets(data)
    body = {"title": f"Ten widgets {data['run']}", "description": "every widget type", "layout_type": "ordered",
            "widgets": widgets}
    with api:
        dash = validate_and_convert_types(body, (Dashboard,), ["body"], True, True, api.configuration)
        created = DashboardsApi(api).create_dashboard(body=dash)
    return server, data, created.id, widgets


def charts_drawn(n):
    """Actions: wait for `n` widget charts, each with at least one series."""
    return [{"waitForRows": "widget-chart", "count": n},
            {"waitFor": "[data-testid=widget-chart]:not([data-series-count])", "state": "detached"},
            {"waitFor": "[data-testid=widget-chart][data-series-count='0']", "state": "detached"}]


def test_list_and_host_overview(hosts):
    server, _, names = hosts
    shipped = json.loads((REPO / "dashboards" / "host-overview.json").read_text())
    listed = requests.get(server.http + "/api/v1/dashboard", timeout=10).json()["dashboards"]
    assert any(d["id"] == HOST_OVERVIEW and d["title"] == "Host overview" for d in listed), listed
    overview = requests.get(f"{server.http}/api/v1/dashboard/{HOST_OVERVIEW}", timeout=10).json()
    n_widgets = widget_count(overview["widgets"])
    assert n_widgets == widget_count(shipped["widgets"]) == 8

    lst, opened, board, narrowed = browse(server.http, [
        {"path": "/dashboards", "waitFor": "[data-testid=dashboard-row]", "testids": ["dashboard-row"],
         "screenshot": str(SCREENSHOTS / "dashboards.png")},
        {"path": "/dashboards", "waitFor": "[data-testid=dashboard-row]",
         "actions": [{"click": "[data-testid=dashboard-row] a:has-text('Host overview')"},
                     {"waitForURL": f"/dashboards/{HOST_OVERVIEW}"}, {"waitFor": "[data-testid=widget]"}]},
        {"path": f"/dashboards/{HOST_OVERVIEW}?from=now-1h&to=now", "waitFor": "[data-testid=widget]",
         "testids": ["widget", "widget-chart", "widget-legend-item", "toplist-row", "widget-value", "widget-error"],
         "actions": [*charts_drawn(5), {"waitForRows": "toplist-row", "count": 2}],
         "screenshot": str(SCREENSHOTS / "dashboard-host-overview.png"), "fullPage": True},
        {"path": f"/dashboards/{HOST_OVERVIEW}?tpl_host={names[0]}", "waitFor": "[data-testid=widget]",
         "testids": ["widget-legend-item", "toplist-row"],
         "actions": [*charts_drawn(5), {"waitForRows": "toplist-row", "count": 1}]},
    ])

    assert not problems(lst), problems(lst)
    assert any("Host overview" in t for t in lst["texts"]["dashboard-row"]), lst["texts"]
    assert not problems(opened), problems(opened)
    assert opened["url"].split("?")[0].endswith(f"/dashboards/{HOST_OVERVIEW}")

    assert not problems(board), problems(board)
    assert board["counts"]["widget"] == n_widgets, board["counts"]
    assert board["counts"]["widget-chart"] == 5 and board["counts"]["widget-error"] == 0, board["counts"]
    legend = board["texts"]["widget-legend-item"]
    for host in names:
        assert any(host in t for t in legend), legend
        assert any(host in t for t in board["texts"]["toplist-row"]), board["texts"]["toplist-row"]
    value = board["texts"]["widget-value"]
    assert len(value) == 1 and value[0].strip() not in ("", "—"), value
    assert "Host overview" in board["text"] and "Hosts reporting system.* metrics" in board["text"]

    # `?tpl_host=` narrows every widget to that host (the select/input shows it).
    assert not problems(narrowed), problems(narrowed)
    assert all(names[1] not in t for t in narrowed["texts"]["widget-legend-item"]), narrowed["texts"]
    assert any(names[0] in t for t in narrowed["texts"]["toplist-row"]), narrowed["texts"]


def test_ten_widgets_render_and_note_is_text(ten):
    server, data, dash_id, widgets = ten
    total = widget_count(widgets)
    assert len(widgets) == 10 and total == 12
    (r,) = browse(server.http, [
        {"path": f"/dashboards/{dash_id}", "waitFor": "[data-testid=widget]",
         "testids": ["widget", "widget-chart", "widget-log-row", "widget-red", "toplist-row", "widget-value",
                     "widget-error"],
         "actions": [*charts_drawn(2), {"waitForRows": "widget-log-row"}, {"waitFor": "[data-testid=widget-red]"},
                     {"waitForRows": "widget-value", "count": 2},
                     {"waitFor": "[data-testid=heatmap-canvas][data-cells]:not([data-cells='0'])"}],
         "attributes": [{"selector": "[data-testid=heatmap-canvas]", "names": ["data-cells", "data-source"]}],
         "canvasPixels": ["[data-testid=heatmap-canvas]"],
         "screenshot": str(SCREENSHOTS / "dashboard-ten-widgets.png"), "fullPage": True},
    ])
    assert not problems(r), problems(r)
    assert r["counts"]["widget"] == total, r["counts"]
    assert r["counts"]["widget-error"] == 0, r["texts"]["widget-error"]
    assert r["counts"]["widget-log-row"] == data["svc_a_logs"], r["texts"]["widget-log-row"]
    assert r["counts"]["toplist-row"] == 2, r["texts"]["toplist-row"]
    # The note's payload is literal text, in its own paragraph.
    assert f"First paragraph {NOTE_XSS}" in r["text"] and "Second paragraph" in r["text"]
    assert "unsupported widget type hostmap" in r["text"]
    assert "inside the group" in r["text"]
    # The max over time of the hosts' average load ((1 + m + 2 + m) / 2, m = 0..5), with 2 decimals.
    assert "6.50" in r["texts"]["widget-value"], r["texts"]["widget-value"]
    # The heatmap of the distribution is a canvas of painted cells (built from its quantiles), not lines.
    (heat,) = r["attributes"]["[data-testid=heatmap-canvas]"]
    assert int(heat["data-cells"]) > 0 and heat["data-source"] == "quantiles", heat
    assert r["canvasPixels"]["[data-testid=heatmap-canvas]"][0] > 0, r["canvasPixels"]


def test_edit_json_and_save(ten):
    server, data, dash_id, _ = ten
    api, _ = api_clients(server)
    doc = requests.get(f"{server.http}/api/v1/dashboard/{dash_id}", timeout=10).json()
    new_title = f"Renamed in the browser {data['run']}"
    edited = dict(doc, title=new_title)
    bad = dict(doc, title="")

    saved, refused = browse(server.http, [
        {"path": f"/dashboards/{dash_id}", "waitFor": "[data-testid=dashboard-edit]",
         "actions": [{"click": "[data-testid=dashboard-edit]"},
                     {"fill": "[data-testid=dashboard-json]", "text": json.dumps(edited, indent=2)},
                     {"click": "[data-testid=dashboard-save]"},
                     {"waitForText": new_title}, {"waitFor": "[data-testid=dashboard-json]", "state": "detached"}]},
        {"path": f"/dashboards/{dash_id}", "waitFor": "[data-testid=dashboard-edit]", "testids": ["dashboard-error"],
         "actions": [{"click": "[data-testid=dashboard-edit]"},
                     {"fill": "[data-testid=dashboard-json]", "text": json.dumps(bad)},
                     {"click": "[data-testid=dashboard-save]"},
                     {"waitFor": "[data-testid=dashboard-error]"}]},
    ])
    assert not problems(saved), problems(saved)
    with api:
        assert DashboardsApi(api).get_dashboard(dash_id).title == new_title

    put_400 = lambda f: f.get("status") == 400 and f["method"] == "PUT"  # noqa: E731
    assert not problems(refused, allow=put_400), problems(refused, allow=put_400)
    assert any("title" in t for t in refused["texts"]["dashboard-error"]), refused["texts"]
    with api:
        assert DashboardsApi(api).get_dashboard(dash_id).title == new_title


def test_new_dashboard(hosts):
    server, _, _ = hosts
    before = {d["id"] for d in requests.get(server.http + "/api/v1/dashboard", timeout=10).json()["dashboards"]}
    (r,) = browse(server.http, [
        {"path": "/dashboards", "waitFor": "[data-testid=dashboard-new]",
         "actions": [{"click": "[data-testid=dashboard-new]"}, {"waitForURL": "/dashboards/"},
                     {"waitForText": "No widgets."}]},
    ])
    assert not problems(r), problems(r)
    after = requests.get(server.http + "/api/v1/dashboard", timeout=10).json()["dashboards"]
    new = [d for d in after if d["id"] not in before]
    assert len(new) == 1 and new[0]["title"] == "New dashboard", new
    assert r["url"].split("?")[0].endswith(f"/dashboards/{new[0]['id']}"), r["url"]
