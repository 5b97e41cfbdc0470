"""The shipped "Sightline self-monitoring" dashboard (issue #6) in a real browser: on a server started with
`--self-monitoring-interval 1s` that took DogStatsD points, a log and API requests, after a few seconds of its
own metrics every widget draws data (6 charts with at least one series each, the toplist of routes, 3 numbers),
with no console error or failed request; the `$host` template variable narrows it to the server's host."""

import json
import time
from pathlib import Path

import pytest
import requests

from conftest import Server, api_clients, wait_until
from ui_helpers import SCREENSHOTS, browse, problems

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = "sightline-self-monitoring"
CHARTS = 6  # timeseries widgets of dashboards/sightline-self-monitoring.json
VALUES = 3  # query_value widgets


def widget_count(widgets):
    return sum(1 + widget_count(w["definition"].get("widgets", [])) for w in widgets)


def charts_drawn(n):
    """Actions: wait for `n` widget charts, each with at least one series."""
    return [{"waitForRows": "widget-chart", "count": n},
            {"waitFor": "[data-testid=widget-chart]:not([data-series-count])", "state": "detached"},
            {"waitFor": "[data-testid=widget-chart][data-series-count='0']", "state": "detached"}]


@pytest.fixture(scope="module")
def selfmon(tmp_path_factory):
    """A server storing its own metrics every second, with some traffic and ~5 s of self-monitoring data."""
    server = Server(tmp_path_factory.mktemp("ui-selfmon") / "data",
                    extra_args=["--self-monitoring-interval", "1s"]).start()
    try:
        _, dog = api_clients(server)
        for i in range(50):
            dog.increment("ui.selfmon.hits", 1, tags=["env:e2e"])
            dog.gauge("ui.selfmon.level", i, tags=["env:e2e"])
        dog.flush()
        dog.close_socket()
        r = requests.post(server.http + "/api/v2/logs",
                          json=[{"message": "self-monitoring ui e2e", "service": "ui-selfmon"}], timeout=10)
        assert r.status_code == 202, r.text
        time.sleep(5)
        now = int(time.time())
        for q in ("sum:sightline.storage_points_written.count{*}.as_count()",
                  "max:sightline.http_request_duration_seconds.p99{*} by {route}",
                  "max:sightline.wal_fsync_seconds.p99{*}"):
            wait_until(lambda q=q: server.series(q, now - 600, int(time.time()) + 60), timeout=15, what=q)
        yield server
    finally:
        server.stop()


def test_self_monitoring_dashboard_draws_every_widget(selfmon):
    server = selfmon
    shipped = json.loads((REPO / "dashboards" / "sightline-self-monitoring.json").read_text())
    listed = requests.get(server.http + "/api/v1/dashboard", timeout=10).json()["dashboards"]
    assert any(d["id"] == DASHBOARD and d["title"] == "Sightline self-monitoring" for d in listed), listed
    stored = requests.get(f"{server.http}/api/v1/dashboard/{DASHBOARD}", timeout=10).json()
    n_widgets = widget_count(stored["widgets"])
    assert n_widgets == widget_count(shipped["widgets"]) == 11
    types = [w["definition"]["type"] for w in shipped["widgets"]]
    assert types.count("timeseries") == CHARTS and types.count("query_value") == VALUES, types
    host = next(t.split(":", 1)[1]
                for s in server.series("max:sightline.storage_series{*} by {host}", int(time.time()) - 600,
                                       int(time.time()) + 60)
                for t in s["tag_set"] if t.startswith("host:"))

    board, narrowed = browse(server.http, [
        {"path": f"/dashboards/{DASHBOARD}?from=now-15m&to=now", "waitFor": "[data-testid=widget]",
         "testids": ["widget", "widget-chart", "widget-legend-item", "toplist-row", "widget-value", "widget-error"],
         "actions": [*charts_drawn(CHARTS), {"waitFor": "[data-testid=toplist-row]"}],
         "screenshot": str(SCREENSHOTS / "dashboard-self-monitoring.png"), "fullPage": True},
        {"path": f"/dashboards/{DASHBOARD}?from=now-15m&to=now&tpl_host={host}", "waitFor": "[data-testid=widget]",
         "testids": ["widget", "widget-chart", "widget-value", "widget-error"],
         "actions": [*charts_drawn(CHARTS)]},
    ])

    assert not problems(board), problems(board)
    counts = board["counts"]
    assert counts["widget"] == n_widgets, counts
    assert counts["widget-chart"] == CHARTS and counts["widget-error"] == 0, counts
    assert counts["toplist-row"] >= 1, counts
    assert any("/api/" in t for t in board["texts"]["toplist-row"]), board["texts"]["toplist-row"]
    values = board["texts"]["widget-value"]
    assert len(values) == VALUES and all(v.strip() not in ("", "—") for v in values), values
    legend = " ".join(board["texts"]["widget-legend-item"])
    for metric in ("sightline.storage_points_written.count", "sightline.wal_fsync_seconds.p99"):
        assert metric in legend, legend
    assert "Sightline self-monitoring" in board["text"] and "Where the data comes from" in board["text"]

    # `?tpl_host=` narrows every widget to the server's own host, which still has data everywhere.
    assert not problems(narrowed), problems(narrowed)
    assert narrowed["counts"]["widget-chart"] == CHARTS and narrowed["counts"]["widget-error"] == 0
    assert all(v.strip() not in ("", "—") for v in narrowed["texts"]["widget-value"]), narrowed["texts"]
