"""The metrics explorer (`/metrics`, issue #6, SPEC §5, §8b) in a real browser: a gauge sent through DogStatsD
(`datadog`, timestamped points for three hosts) is drawn with one uPlot series and one legend entry per group;
a malformed query shows the API's error with its position under the query; a drag across the chart zooms,
putting an absolute range in the URL; several queries, a formula and the chart type come from the URL."""

import time
from urllib.parse import parse_qs, urlencode, urlparse

import pytest

from conftest import api_clients, wait_until
from ui_helpers import SCREENSHOTS, browse, problems, ui  # noqa: F401 (ui is a fixture)

HOSTS = ("h1", "h2", "h3")
POINTS = 10  # per host, one a minute, the newest a minute ago


@pytest.fixture(scope="module")
def hosts_metric(ui):
    """`ui.metrics.hosts` for three hosts (value = 10 * host number + minute), and its `by {host}` query."""
    server, data = ui
    run = data["run"]
    metric = "ui.metrics.hosts"
    _, dog = api_clients(server)
    now = int(time.time())
    for n, host in enumerate(HOSTS, start=1):
        for m in range(POINTS):
            dog.gauge_with_timestamp(metric, 10 * n + m, now - 60 * (POINTS - m), tags=[f"host:{host}", f"run:{run}"])
    dog.flush()
    dog.close_socket()
    query = f"avg:{metric}{{run:{run}}} by {{host}}"
    wait_until(lambda: len(server.series(query, now - 3600, now + 60)) == len(HOSTS), timeout=10,
               what="the three hosts' series")
    return server, data, query


def chart_with(n):
    return f'[data-testid=metric-chart][data-series-count="{n}"]'


def metrics_path(**params):
    return "/metrics?" + urlencode(params, doseq=True)


def query_400(f):
    return f.get("status") == 400 and "/api/v1/query" in f["url"]


def test_one_series_per_group_and_errors_with_position(hosts_metric):
    server, _, query = hosts_metric
    chart, malformed = browse(server.http, [
        {"path": metrics_path(query=query), "waitFor": chart_with(3), "testids": ["metric-legend-item"],
         "screenshot": str(SCREENSHOTS / "metrics.png")},
        {"path": "/metrics", "waitFor": "[data-testid=metric-query-input]",
         "screenshot": str(SCREENSHOTS / "metrics-query-error.png"), "testids": ["metric-query-error"],
         "actions": [{"fill": "[data-testid=metric-query-input]", "text": "avg:ui.metrics.hosts{run:"},
                     {"press": "Enter", "selector": "[data-testid=metric-query-input]"},
                     {"waitFor": "[data-testid=metric-query-error]"}]},
    ])

    assert not problems(chart), problems(chart)
    legend = chart["texts"]["metric-legend-item"]
    assert chart["counts"]["metric-legend-item"] == 3, legend
    for host in HOSTS:
        assert sum(f"host:{host}" in t for t in legend) == 1, legend
    # Not hovering: each entry shows its group's newest value (10 * n + 9).
    for n, host in enumerate(HOSTS, start=1):
        assert any(f"host:{host}" in t and str(10 * n + POINTS - 1) in t for t in legend), legend

    # The API answers 400 (the only failure allowed); the row says where the query went wrong.
    assert not problems(malformed, allow=query_400), problems(malformed, allow=query_400)
    assert parse_qs(urlparse(malformed["url"]).query).get("query") == ["avg:ui.metrics.hosts{run:"], malformed["url"]
    errors = malformed["texts"]["metric-query-error"]
    assert len(errors) == 1 and "position" in errors[0], errors
    assert (SCREENSHOTS / "metrics.png").stat().st_size > 0


def test_drag_zooms_into_an_absolute_range(hosts_metric):
    server, _, query = hosts_metric
    before = int(time.time() * 1000)
    (r,) = browse(server.http, [
        {"path": metrics_path(query=query, **{"from": "now-1h", "to": "now"}), "waitFor": chart_with(3),
         "screenshot": str(SCREENSHOTS / "metrics-zoomed.png"),
         "actions": [{"drag": "[data-testid=metric-chart] .u-over", "from": [0.5, 0.5], "to": [0.95, 0.5]},
                     {"waitForURL": "from=1"}, {"waitFor": chart_with(3)}]},
    ])
    assert not problems(r), problems(r)
    q = parse_qs(urlparse(r["url"]).query)
    assert q["query"] == [query], r["url"]
    frm, to = int(q["from"][0]), int(q["to"][0])
    # Half an hour to a few minutes ago, as unix milliseconds (with slack for the pixel rounding).
    assert before - 3_600_000 < frm < to <= before + 120_000, (frm, to, before)
    assert 20 * 60_000 < to - frm < 30 * 60_000, (frm, to)


def test_queries_formula_and_type_come_from_the_url(hosts_metric):
    server, data, query = hosts_metric
    two, formula = browse(server.http, [
        {"path": metrics_path(query=[query, data["metric_query"]], type="bars"), "waitFor": chart_with(4),
         "testids": ["metric-legend-item", "metric-query-input"],
         "screenshot": str(SCREENSHOTS / "metrics-two-queries.png")},
        {"path": metrics_path(query=query, formula="a * 2", type="area"), "waitFor": chart_with(3),
         "testids": ["metric-legend-item"], "screenshot": str(SCREENSHOTS / "metrics-formula.png")},
    ])
    assert not problems(two), problems(two)
    assert two["counts"]["metric-query-input"] == 2
    legend = two["texts"]["metric-legend-item"]
    assert sum(t.startswith("a: ") for t in legend) == 3 and sum(t.startswith("b: ") for t in legend) == 1, legend
    assert any(f"service:{data['svc_a']}" in t for t in legend), legend

    assert not problems(formula), problems(formula)
    legend = formula["texts"]["metric-legend-item"]
    assert formula["counts"]["metric-legend-item"] == 3, legend
    for n, host in enumerate(HOSTS, start=1):
        assert any(f"host:{host}" in t and str(2 * (10 * n + POINTS - 1)) in t for t in legend), legend
