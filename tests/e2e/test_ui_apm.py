"""The APM views of issue #6 in a real browser (SPEC §4, §8, §8b): the service page (`/apm/services/{service}`)
draws requests, errors and latency (p50/p95/p99) over time from the RED metrics that OTLP trace ingest writes,
lists the service's resources in a table sortable by clicking its headers (the sort kept in the URL) and its
recent spans (a click opens the trace waterfall); the /apm services table links to it. The span search
(`/apm/spans`, linked from /apm) filters spans with the Datadog span search syntax kept in the URL, shows the
API's 400 message for a malformed query, and a click on a span opens its waterfall. The shipped "Service
overview" dashboard (`sightline-service-overview`) draws every widget with data for a service chosen with
`?tpl_service=`. The data comes through the clients users use: spans through the OpenTelemetry SDK (entry spans
named `http.server.request`, the dashboard's default operation, with explicit times spread over the past ten
minutes), logs through the Datadog log intake; the span-name XSS payload planted by ui_helpers must show as text
and never run on the new pages. Screenshots go to tests/e2e/screenshots/ (or $SIGHTLINE_SCREENSHOTS)."""

import time
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests
from opentelemetry import trace as trace_api
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_helpers as oh
from conftest import wait_until
from helpers import search
from ui_helpers import SCREENSHOTS, XSS, browse, problems, ui  # noqa: F401 (ui is a fixture)

SERVICE_OVERVIEW = "sightline-service-overview"
OP = "http.server.request"
MINUTES = 10
# route -> (method, duration ms, every n-th minute, error on minutes where i % 3 == 0)
ROUTES = {
    "GET /orders": ("GET", "/orders", 20, 1, False),
    "POST /orders": ("POST", "/orders", 80, 1, True),
    "GET /orders/{id}": ("GET", "/orders/{id}", 5, 2, False),
}
CONSUMER_RUNS = 3
ERROR_LOGS = 3


def server_request(tracer, method, route, start_ns, dur_ms, error):
    """An entry span (`http.server.request`, kind server) with a database child, at an explicit time."""
    end_ns = start_ns + int(dur_ms * 1e6)
    root = tracer.start_span(OP, kind=SpanKind.SERVER, start_time=start_ns, attributes={
        "http.request.method": method, "http.route": route, "http.response.status_code": 500 if error else 200})
    ctx = trace_api.set_span_in_context(root)
    db = tracer.start_span("postgres.query", context=ctx, kind=SpanKind.CLIENT, start_time=start_ns + 1_000_000,
                           attributes={"db.system": "postgresql", "db.statement": "SELECT * FROM orders"})
    db.end(end_time=end_ns - 1_000_000)
    if error:
        root.set_status(Status(StatusCode.ERROR, "payment failed"))
    root.end(end_time=end_ns)
    return root


@pytest.fixture(scope="module")
def apm(ui):
    """A service with three HTTP resources (one failing every third minute) and a queue consumer, spread over the
    past ten minutes, and its error logs; waits until the RED metrics, spans and logs are queryable."""
    server, data = ui
    run = data["run"]
    svc = f"apm-orders-{run}"
    now_ns = time.time_ns()
    hits = {r: 0 for r in ROUTES}
    errors = 0
    with oh.tracer_provider(server.otlp_grpc, "grpc", service_name=svc) as tp:
        tracer = tp.tracer("apm-e2e")
        for i in range(MINUTES):
            t = now_ns - (MINUTES - i) * 60 * 1_000_000_000
            for n, (resource, (method, route, dur, every, fails)) in enumerate(ROUTES.items()):
                if i % every:
                    continue
                error = fails and i % 3 == 0
                server_request(tracer, method, route, t + n * 5_000_000_000, dur, error)
                hits[resource] += 1
                errors += error
        for k in range(CONSUMER_RUNS):
            t = now_ns - (k + 1) * 90 * 1_000_000_000
            span = tracer.start_span("orders.process", kind=SpanKind.CONSUMER, start_time=t, attributes={
                "messaging.operation": "process", "messaging.destination.name": "orders"})
            span.end(end_time=t + 50_000_000)
        tp.flush()

    now_ms = int(time.time() * 1000)
    body = [{"message": f"payment failed order={i} {run}", "status": "error", "service": svc, "hostname": "apm-host",
             "ddsource": "python", "ddtags": f"env:e2e,run:{run}", "timestamp": now_ms - 1000 * (i + 1)}
            for i in range(ERROR_LOGS)]
    body.append({"message": f"order placed {run}", "status": "info", "service": svc, "hostname": "apm-host",
                 "ddsource": "python", "ddtags": f"env:e2e,run:{run}", "timestamp": now_ms - 500})
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text

    total = sum(hits.values())
    now = int(time.time())

    def red_complete():
        s = server.series(f"sum:trace.{OP}.hits{{service:{svc}}}.as_count()", now - 3600, now + 60)
        return s and sum(v for _, v in s[0]["pointlist"] if v is not None) == total

    wait_until(red_complete, timeout=15, what="the RED metrics of the planted spans")

    def error_spans():
        r = requests.post(server.http + "/api/v2/spans/events/search", json={"data": {"type": "search_request",
                          "attributes": {"filter": {"query": f"service:{svc} status:error", "from": "now-1h",
                                                    "to": "now"}, "page": {"limit": 100}}}}, timeout=10)
        return r.status_code == 200 and len(r.json()["data"]) == errors

    wait_until(error_spans, timeout=15, what="the planted error spans")
    wait_until(lambda: len(search(server, f"service:{svc} status:error")["data"]) == ERROR_LOGS, timeout=10,
               what="the planted error logs")
    return server, dict(data, svc=svc, hits=hits, errors=errors, total=total)


def legend_ok(texts, label):
    """Some legend entry names `label`, and every such entry has a value (not the "—" of a series without
    points)."""
    mine = [t for t in texts if label in t]
    return bool(mine) and all(not t.strip().endswith("—") for t in mine)


def test_service_page(apm):
    server, d = apm
    svc = d["svc"]
    page = f"/apm/services/{quote(svc)}?from=now-1h&to=now"
    charts = [{"waitFor": f"[data-testid=service-chart-{n}][data-series-count='{c}']", "state": "attached"}
              for n, c in (("requests", 1), ("errors", 1), ("latency", 3))]
    main, linked, by_p99, by_p99_asc, consumer = browse(server.http, [
        {"path": page, "waitFor": "[data-testid=top-resource-row]",
         "testids": ["service-legend-item", "top-resource-row", "service-span-row", "service-chart-error",
                     "service-red"],
         "actions": [*charts, {"waitForRows": "service-span-row"}],
         "screenshot": str(SCREENSHOTS / "apm-service.png"), "fullPage": True},
        # The /apm table links each service to its page, keeping the time range.
        {"path": "/apm?from=now-1h&to=now", "waitFor": "[data-testid=service-row]",
         "actions": [{"click": f"[data-testid=service-link]:text-is('{svc}')"},
                     {"waitForURL": f"/apm/services/{svc}"}, {"waitFor": "[data-testid=top-resource-row]"}]},
        {"path": page, "waitFor": "[data-testid=top-resource-row]", "testids": ["top-resource-row"],
         "actions": [{"click": "[data-testid=sort-p99]"}, {"waitForURL": "sort=-p99"}]},
        {"path": page, "waitFor": "[data-testid=top-resource-row]", "testids": ["top-resource-row"],
         "actions": [{"click": "[data-testid=sort-p99]"}, {"waitForURL": "sort=-p99"},
                     {"click": "[data-testid=sort-p99]"}, {"waitForURL": "sort=p99"}]},
        # Another operation of the service, from the URL.
        {"path": page + "&op=orders.process", "waitFor": "[data-testid=top-resource-row]",
         "testids": ["service-legend-item"],
         "actions": [{"waitFor": "[data-testid=service-chart-requests][data-series-count='1']", "state": "attached"}]},
    ])

    assert not problems(main), problems(main)
    legend = main["texts"]["service-legend-item"]
    for label in ("hits", "errors", "p50 (ms)", "p95 (ms)", "p99 (ms)"):
        assert legend_ok(legend, label), (label, legend)
    assert main["counts"].get("service-chart-error", 0) == 0, main["texts"]
    # The RED figures of the whole service: every entry span (HTTP and consumer).
    assert str(d["total"] + CONSUMER_RUNS) in main["texts"]["service-red"][0], main["texts"]["service-red"]
    # Every planted resource, as its `resource:` tag value (whitespace reads as `_`), with its operation.
    rows = main["texts"]["top-resource-row"]
    assert len(rows) == len(ROUTES) + 1, rows
    cells = [[c.strip() for c in r.split("\t")] for r in rows]
    for resource, n in d["hits"].items():
        tag = resource.replace(" ", "_")
        assert any(c[0] == tag and OP in c[1] and c[2] == str(n) for c in cells), (resource, rows)
    assert any(r.startswith("process_orders") and "orders.process" in r for r in rows), rows
    # Hits descending by default (ties by name): the every-minute resources first, GET before POST.
    assert rows[0].startswith("GET_/orders") and not rows[0].startswith("GET_/orders/"), rows
    spans = main["texts"]["service-span-row"]
    assert spans and all(svc in s for s in spans), spans
    assert "Explore" in main["text"] and "Search all spans of this service" in main["text"]

    assert not problems(linked), problems(linked)
    assert urlparse(linked["url"]).path == f"/apm/services/{svc}", linked["url"]
    assert parse_qs(urlparse(linked["url"]).query).get("from") == ["now-1h"], linked["url"]

    # Sorting by p99: the slowest (POST, 80 ms) first; clicking again, the fastest (GET /orders/{id}, 5 ms).
    assert not problems(by_p99), problems(by_p99)
    assert by_p99["texts"]["top-resource-row"][0].startswith("POST_/orders"), by_p99["texts"]["top-resource-row"]
    assert not problems(by_p99_asc), problems(by_p99_asc)
    assert parse_qs(urlparse(by_p99_asc["url"]).query).get("sort") == ["p99"], by_p99_asc["url"]
    assert by_p99_asc["texts"]["top-resource-row"][0].startswith("GET_/orders/{id}"), by_p99_asc["texts"]

    assert not problems(consumer), problems(consumer)
    assert legend_ok(consumer["texts"]["service-legend-item"], "hits"), consumer["texts"]


def test_span_search(apm):
    server, d = apm
    svc = d["svc"]
    query = f"service:{svc} status:error"

    def spans_400(f):
        return f.get("status") == 400 and "/api/v2/spans/events/search" in f["url"]

    linked, filtered, malformed, opened, from_url = browse(server.http, [
        {"path": "/apm", "waitFor": "[data-testid=apm-span-search]",
         "actions": [{"click": "[data-testid=apm-span-search]"}, {"waitForURL": "/apm/spans"},
                     {"waitForRows": "span-search-row"}]},
        {"path": "/apm/spans?from=now-1h", "waitFor": "[data-testid=span-search-row]",
         "testids": ["span-search-row", "span-summary"],
         "actions": [{"fill": "[data-testid=span-query-input]", "text": query},
                     {"press": "Enter", "selector": "[data-testid=span-query-input]"},
                     {"waitForURL": "query="},
                     {"waitForRows": "span-search-row", "allContain": "POST /orders", "count": d["errors"]}],
         "screenshot": str(SCREENSHOTS / "apm-spans.png")},
        {"path": "/apm/spans", "waitFor": "[data-testid=span-search-row]", "testids": ["query-error", "span-search-row"],
         "actions": [{"fill": "[data-testid=span-query-input]", "text": f"service:{svc} @http.route:("},
                     {"press": "Enter", "selector": "[data-testid=span-query-input]"},
                     {"waitFor": "[data-testid=query-error]"}],
         "screenshot": str(SCREENSHOTS / "apm-spans-error.png")},
        {"path": f"/apm/spans?query={quote(query)}", "waitFor": "[data-testid=span-search-row]",
         "actions": [{"click": "[data-testid=span-search-row]"}, {"waitForURL": "/apm/traces/"},
                     {"waitForRows": "span-row", "count": 2}],
         "screenshot": str(SCREENSHOTS / "apm-spans-waterfall.png")},
        # The service page's recent spans open the waterfall too.
        {"path": f"/apm/services/{quote(svc)}", "waitFor": "[data-testid=service-span-row]",
         "actions": [{"click": "[data-testid=service-span-row]"}, {"waitForURL": "/apm/traces/"},
                     {"waitFor": "[data-testid=waterfall]"}]},
    ])

    assert not problems(linked), problems(linked)
    assert urlparse(linked["url"]).path == "/apm/spans", linked["url"]

    assert not problems(filtered), problems(filtered)
    assert parse_qs(urlparse(filtered["url"]).query).get("query") == [query], filtered["url"]
    assert parse_qs(urlparse(filtered["url"]).query).get("from") == ["now-1h"], filtered["url"]
    rows = filtered["texts"]["span-search-row"]
    assert len(rows) == d["errors"], rows
    assert all(svc in r and "POST /orders" in r and "error" in r for r in rows), rows
    assert "80.0 ms" in rows[0], rows

    # The malformed query: the API's 400 (the only failure allowed) and its message, naming the position.
    assert not problems(malformed, allow=spans_400), problems(malformed, allow=spans_400)
    errors = malformed["texts"]["query-error"]
    assert len(errors) == 1 and "position" in errors[0], errors
    assert malformed["counts"].get("span-search-row", 0) == 0, malformed["texts"]["span-search-row"]

    assert not problems(opened), problems(opened)
    trace_id = urlparse(opened["url"]).path.rsplit("/", 1)[1]
    assert len(trace_id) == 32, opened["url"]
    assert "postgres.query" in opened["text"] and "POST /orders" in opened["text"], opened["text"][:2000]
    assert opened["texts"]["span-row"][0].startswith(OP), opened["texts"]["span-row"]

    assert not problems(from_url), problems(from_url)
    assert "/apm/traces/" in from_url["url"], from_url["url"]


def test_span_name_payload_is_text(apm):
    """The planted span-name XSS payload shows as text on the service page and in the span search."""
    server, d = apm
    svc = d["svc_trace"]
    payload = XSS["span name"]
    service, spans = browse(server.http, [
        {"path": f"/apm/services/{quote(svc)}", "waitFor": "[data-testid=service-span-row]",
         "testids": ["service-span-row"], "waitForText": payload},
        {"path": f"/apm/spans?query={quote(f'service:{svc}')}", "waitFor": "[data-testid=span-search-row]",
         "testids": ["span-search-row"], "waitForText": payload},
    ])
    for r in (service, spans):
        assert not problems(r), problems(r)
        assert payload in r["text"], r["text"][:2000]
    assert len(spans["texts"]["span-search-row"]) == 3, spans["texts"]["span-search-row"]


def charts_drawn(n):
    """Actions: wait for `n` widget charts, each with at least one series."""
    return [{"waitForRows": "widget-chart", "count": n},
            {"waitFor": "[data-testid=widget-chart]:not([data-series-count])", "state": "detached"},
            {"waitFor": "[data-testid=widget-chart][data-series-count='0']", "state": "detached"}]


def test_service_overview_dashboard(apm):
    server, d = apm
    svc = d["svc"]
    doc = requests.get(f"{server.http}/api/v1/dashboard/{SERVICE_OVERVIEW}", timeout=10).json()
    assert doc["title"] == "Service overview", doc
    assert [v["name"] for v in doc["template_variables"]] == ["service", "env", "operation"], doc
    types = sorted(w["definition"]["type"] for w in doc["widgets"])
    assert types == sorted(["note", "trace_service", "timeseries", "timeseries", "timeseries", "timeseries",
                            "toplist", "log_stream"]), types

    (board,) = browse(server.http, [
        {"path": f"/dashboards/{SERVICE_OVERVIEW}?tpl_service={quote(svc)}", "waitFor": "[data-testid=widget]",
         "testids": ["widget", "widget-chart", "widget-legend-item", "toplist-row", "widget-red", "widget-log-row",
                     "widget-error"],
         "actions": [*charts_drawn(4), {"waitForRows": "toplist-row", "count": len(ROUTES)},
                     {"waitForRows": "widget-log-row", "count": ERROR_LOGS}, {"waitFor": "[data-testid=widget-red]"}],
         "screenshot": str(SCREENSHOTS / "dashboard-service-overview.png"), "fullPage": True},
    ])
    assert not problems(board), problems(board)
    assert board["counts"]["widget"] == len(doc["widgets"]), board["counts"]
    assert board["counts"].get("widget-error", 0) == 0, board["texts"].get("widget-error")
    assert board["counts"]["widget-chart"] == 4, board["counts"]
    # Three latency series (p50, p95, p99) next to requests, errors and the error rate.
    legend = board["texts"]["widget-legend-item"]
    assert len(legend) == 6, legend
    assert all(not t.rstrip().endswith("—") for t in legend), legend
    for p in ("p50:", "p95:", "p99:"):
        assert any(p in t for t in legend), (p, legend)
    # Resources by hits, the busiest first.
    top = board["texts"]["toplist-row"]
    for resource, n in d["hits"].items():
        assert any(f"resource:{resource.replace(' ', '_')}" in t and str(n) in t for t in top), (resource, top)
    assert "resource:GET_/orders/{id}" in top[-1], top
    assert all(svc in t and "payment failed" in t for t in board["texts"]["widget-log-row"]), board["texts"]
    red = board["texts"]["widget-red"][0]
    assert str(d["total"] + CONSUMER_RUNS) in red, red
    assert "http.server.request by default" in board["text"], board["text"][:3000]
