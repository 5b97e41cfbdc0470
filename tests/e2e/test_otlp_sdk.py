"""OTLP end to end with the real OpenTelemetry SDKs (Python 1.45 over gRPC and HTTP/protobuf, Node 0.223 over
HTTP/JSON) against the real binary: trace trees, span search, RED metrics, exponential histograms, cumulative
counters and OTLP logs linked to their traces (issue #4)."""

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from opentelemetry._logs import SeverityNumber
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_helpers as oh
from conftest import wait_until
from helpers import assert_close, exact_quantile, search, skewed_samples, total

NODE_DIR = Path(__file__).parent / "otel-node"


def run_id():
    return uuid.uuid4().hex[:12]


def get_trace(server, trace_id):
    r = requests.get(f"{server.http}/api/ui/traces/{trace_id}", timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def span_search(server, query, limit=1000):
    body = {"data": {"type": "search_request", "attributes": {
        "filter": {"query": query, "from": "now-1h", "to": "now+5m"}, "page": {"limit": limit}}}}
    r = requests.post(server.http + "/api/v2/spans/events/search", json=body, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def tree_shape(node):
    """(name, error, [children shapes sorted by name]) of a trace node."""
    return (node["name"], node["error"], sorted(tree_shape(c) for c in node["children"]))


def metric_total(server, query):
    now = int(time.time())
    return total(server.series(query, now - 900, now + 60))


def emit_shop_trace(tp, run, lp=None):
    """GET /cart (server) → db.query (client, error) and render (internal) → template (internal)."""
    tracer = tp.tracer("shop")
    with tracer.start_as_current_span("GET /cart", kind=SpanKind.SERVER,
                                      attributes={"run.id": run, "http.request.method": "GET",
                                                  "http.route": "/cart"}) as root:
        with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT,
                                          attributes={"db.statement": "SELECT * FROM cart", "run.id": run}) as db:
            db.set_status(Status(StatusCode.ERROR, "connection reset"))
        with tracer.start_as_current_span("render", attributes={"run.id": run}):
            with tracer.start_as_current_span("template", attributes={"run.id": run}):
                if lp is not None:
                    lp.emit(f"rendered cart {run}", severity=SeverityNumber.WARN, attributes={"run.id": run})
    return oh.span_ids(root)


EXPECTED_TREE = ("GET /cart", False, [("db.query", True, []), ("render", False, [("template", False, [])])])


@pytest.mark.parametrize("protocol,compression", [("grpc", "gzip"), ("grpc", None), ("http", "gzip")])
def test_nested_trace_comes_back_as_a_tree(server, protocol, compression):
    endpoint = server.otlp_grpc if protocol == "grpc" else server.otlp_http
    run = run_id()
    with oh.tracer_provider(endpoint, protocol, compression=compression, service_name="py-shop") as tp:
        ids = emit_shop_trace(tp, run)
        tp.flush()
    t = get_trace(server, ids["trace_id"])
    assert t["span_count"] == 4
    assert t["services"] == ["py-shop"]
    assert len(t["roots"]) == 1, t["roots"]
    root = t["roots"][0]
    assert root["span_id"] == ids["span_id"]
    assert root["resource"] == "GET /cart"
    assert tree_shape(root) == EXPECTED_TREE
    assert root["on_critical_path"] is True
    children_time = sum(c["duration"] for c in root["children"])
    assert root["self_time"] >= root["duration"] - children_time
    # Span search counts what was sent.
    assert len(span_search(server, f"@run.id:{run}")) == 4
    assert len(span_search(server, f"@run.id:{run} status:error")) == 1
    assert len(span_search(server, f"@run.id:{run} service:py-shop -operation_name:db.query")) == 3
    assert len(span_search(server, f"@run.id:{run} @duration:>1h")) == 0
    # Span analytics: count per operation.
    body = {"data": {"type": "aggregate_request", "attributes": {
        "compute": [{"aggregation": "count"}],
        "filter": {"query": f"@run.id:{run}", "from": "now-1h", "to": "now+5m"},
        "group_by": [{"facet": "operation_name", "limit": 10}]}}}
    r = requests.post(server.http + "/api/v2/spans/analytics/aggregate", json=body, timeout=30)
    assert r.status_code == 200, r.text
    counts = {b["attributes"]["by"]["operation_name"]: b["attributes"]["compute"]["c0"] for b in r.json()["data"]}
    assert counts == {"GET /cart": 1, "db.query": 1, "render": 1, "template": 1}, counts


def test_red_metrics_hits_errors_and_p99(server):
    run = run_id()
    service = f"py-red-{run}"
    durations_ms = list(range(1, 201))
    with oh.tracer_provider(server.otlp_http, "http", service_name=service) as tp:
        tracer = tp.tracer("red")
        start = time.time_ns()
        for i, d in enumerate(durations_ms):
            s = tracer.start_span("checkout", kind=SpanKind.SERVER, start_time=start + i * 1000,
                                  attributes={"http.request.method": "POST", "http.route": "/checkout"})
            if i % 10 == 0:
                s.set_status(Status(StatusCode.ERROR))
            s.end(end_time=start + i * 1000 + d * 1_000_000)
        tp.flush()
    scope = f"service:{service}"
    # RED metrics are aggregated in memory and written every second.
    wait_until(lambda: metric_total(server, f"sum:trace.checkout.hits{{{scope}}}.as_count()") == 200,
               timeout=5, what="200 RED hits")
    assert metric_total(server, f"sum:trace.checkout.errors{{{scope}}}.as_count()") == 20
    now = int(time.time())
    series = server.series(f"p99:trace.checkout.duration{{{scope}}}.rollup(max, 3600)", now - 900, now + 60)
    p99 = max(v for s in series for _, v in s["pointlist"] if v is not None)
    assert_close(p99, exact_quantile([d / 1000 for d in durations_ms], 0.99), rel=0.02, what="p99 seconds")
    r = requests.get(server.http + "/api/ui/services", params={"from": now - 900, "to": now + 60}, timeout=10)
    assert r.status_code == 200, r.text
    svc = next(s for s in r.json()["services"] if s["service"] == service)
    assert (svc["hits"], svc["errors"]) == (200, 20)
    res = svc["resources"][0]
    assert res["resource"].replace("_", " ") == "POST /checkout"
    assert_close(res["p99"] / 1e9, 0.198, rel=0.02, what="services p99")


@pytest.mark.parametrize("protocol,temporality", [("http", "delta"), ("grpc", "cumulative")])
def test_exponential_histogram_p99_within_2_percent(server, protocol, temporality):
    run = run_id()
    endpoint = server.otlp_grpc if protocol == "grpc" else server.otlp_http
    samples = skewed_samples(5000, seed=11)
    # Cumulative: the second export carries all 5,000 samples again; only the difference is added.
    with oh.meter_provider(endpoint, protocol, temporality, exponential=True, service_name="py-metrics") as mp:
        h = mp.meter("shop").create_histogram("py.latency", unit="ms")
        for v in samples[:2500]:
            h.record(v, {"run": run})
        mp.flush()
        for v in samples[2500:]:
            h.record(v, {"run": run})
        mp.flush()
    now = int(time.time())
    for q, name in ((0.99, "p99"), (0.5, "p50")):
        series = server.series(f"{name}:py.latency{{run:{run}}}.rollup(max, 3600)", now - 900, now + 60)
        got = max(v for s in series for _, v in s["pointlist"] if v is not None)
        # The two exports may land in two 10 s buckets: the rollup over the hour merges them into one sketch.
        assert_close(got, exact_quantile(samples, q), rel=0.02, what=f"{name} of an exponential histogram")


@pytest.mark.parametrize("temporality", ["cumulative", "delta"])
def test_counter_exported_three_times_counts_right(server, temporality):
    run = run_id()
    with oh.meter_provider(server.otlp_grpc, "grpc", temporality, service_name="py-metrics") as mp:
        c = mp.meter("shop").create_counter("py.requests")
        for n in (5, 3, 2):
            c.add(n, {"run": run})
            mp.flush()
    wait_until(lambda: metric_total(server, f"sum:py.requests{{run:{run}}}.as_count()") == 10,
               timeout=5, what=f"{temporality} counter total 10")
    # A fourth export with no new measurements adds nothing.
    assert metric_total(server, f"sum:py.requests{{run:{run}}}.as_count()") == 10


def test_otlp_logs_searchable_by_service_and_trace_id(server):
    run = run_id()
    with oh.tracer_provider(server.otlp_grpc, "grpc", service_name="py-logs") as tp, \
            oh.logger_provider(server.otlp_http, "http", service_name="py-logs") as lp:
        ids = emit_shop_trace(tp, run, lp=lp)
        oh.std_logger(lp, "shop").error("std logging %s", run, extra={"run.id": run})
        tp.flush()
        lp.flush()
    query = f"service:py-logs trace_id:{ids['trace_id']}"
    # Logs are searchable within about a second of their acknowledgement (the index commit interval).
    wait_until(lambda: search(server, query)["data"], timeout=5, what="the OTLP log in search")
    found = search(server, query)["data"]
    msgs = sorted(d["attributes"]["message"] for d in found)
    assert msgs == [f"rendered cart {run}"], msgs
    assert found[0]["attributes"]["status"] == "warning"
    assert len(search(server, f"service:py-logs @run.id:{run} status:error")["data"]) == 1
    t = get_trace(server, ids["trace_id"])
    assert [l["message"] for l in t["logs"]] == [f"rendered cart {run}"]


def test_node_sdk_http_json(server):
    run = run_id()
    out = subprocess.run(["node", "emit.mjs", server.otlp_http, run], cwd=NODE_DIR, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    sent = json.loads(out.stdout.strip().splitlines()[-1])
    t = get_trace(server, sent["trace_id"])
    assert t["span_count"] == sent["span_count"] == 4
    assert t["services"] == ["node-shop"]
    root = t["roots"][0]
    assert root["span_id"] == sent["root_span_id"]
    assert root["name"] == "GET /cart"
    names = sorted(c["name"] for c in root["children"])
    assert names == ["db.query", "render"], names
    assert sum(1 for _ in walk(root) if _["error"]) == 1
    query = f"service:node-shop trace_id:{sent['trace_id']}"
    wait_until(lambda: search(server, query)["data"], timeout=5, what="the Node log in search")
    logs = search(server, query)["data"]
    assert [d["attributes"]["message"] for d in logs] == [f"node checkout done {run}"]
    # The cumulative counter is exported twice at 3 (flush, then shutdown): it counts 3.
    assert metric_total(server, "sum:node.requests{service:node-shop}.as_count()") == 3


def walk(node):
    yield node
    for c in node["children"]:
        yield from walk(c)
