"""Self-monitoring (issue #6): with `--self-monitoring-interval 1s` Sightline stores its own /metrics as
`sightline.*` metrics in its own metric store, queryable through `GET /api/v1/query` like any metric: counters
as `.count` deltas (non-zero once DogStatsD points and a log moved them), gauges under their own name, histograms
as `.count`/`.sum`/`.p50`/`.p99`, all tagged `service:sightline` and `host:<hostname>`. `off` (here through
`SIGHTLINE_SELF_MONITORING_INTERVAL`) stores none, and a bad interval stops start-up naming the flag."""

import time

import pytest
import requests

from conftest import api_clients, wait_until


def nonzero(series):
    """The series holding at least one non-zero point."""
    return [s for s in series if any(p[1] for p in s["pointlist"] if p[1] is not None)]


def window():
    now = int(time.time())
    return now - 300, now + 60


def send_traffic(server, run):
    """DogStatsD points and a log through the Datadog intake, so the write counters move."""
    _, dog = api_clients(server)
    for i in range(20):
        dog.increment("selfmon.e2e.hits", 1, tags=[f"run:{run}"])
        dog.gauge("selfmon.e2e.level", i, tags=[f"run:{run}"])
    dog.flush()
    dog.close_socket()
    body = [{"message": f"self-monitoring e2e {run}", "service": "selfmon-e2e", "ddtags": f"run:{run}"}]
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text


def test_own_metrics_are_stored_and_queryable(make_server):
    server = make_server(extra_args=["--self-monitoring-interval", "1s"]).start()
    run = f"{int(time.time())}"
    send_traffic(server, run)
    wait_until(lambda: server.series(f"sum:selfmon.e2e.hits{{run:{run}}}", *window()), timeout=10,
               what="the DogStatsD count")

    # Counters: `.count` deltas, non-zero once points were written, tagged service:sightline and host:.
    points_q = "sum:sightline.storage_points_written.count{service:sightline} by {service,host}.as_count()"
    written = wait_until(lambda: nonzero(server.series(points_q, *window())), timeout=15,
                         what="non-zero sightline.storage_points_written.count")
    tags = written[0]["tag_set"]
    assert "service:sightline" in tags, tags
    assert any(t.startswith("host:") and len(t) > len("host:") for t in tags), tags

    logs_q = "sum:sightline.logs_records_written.count{service:sightline}.as_count()"
    wait_until(lambda: nonzero(server.series(logs_q, *window())), timeout=15,
               what="non-zero sightline.logs_records_written.count")

    # A gauge under its own name: the metric store holds series (at least the DogStatsD ones).
    series = server.series("max:sightline.storage_series{service:sightline}", *window())
    assert nonzero(series), series
    assert max(p[1] for p in series[0]["pointlist"] if p[1] is not None) >= 2, series

    # A histogram: HTTP requests by route (the queries above were answered) and their latency quantiles.
    http_q = "sum:sightline.http_request_duration_seconds.count{service:sightline} by {route}.as_count()"
    routes = wait_until(lambda: nonzero(server.series(http_q, *window())), timeout=15,
                        what="HTTP request counts by route")
    assert any("route:/api/v1/query" in s["tag_set"] for s in routes), [s["tag_set"] for s in routes]
    p99 = server.series("max:sightline.http_request_duration_seconds.p99{route:/api/v1/query}", *window())
    assert nonzero(p99), p99

    # The metric names are listed like any other, and no scrape failed.
    r = requests.get(server.http + "/api/v1/metrics", params={"from": int(time.time()) - 300}, timeout=10)
    names = r.json()["metrics"]
    for name in ("sightline.storage_points_written.count", "sightline.storage_series",
                 "sightline.wal_fsync_seconds.count", "sightline.wal_fsync_seconds.sum"):
        assert name in names, names
    assert server.self_metric("sightline_self_monitoring_errors_total") == 0


def test_off_stores_nothing(make_server):
    server = make_server(env={"SIGHTLINE_SELF_MONITORING_INTERVAL": "off"}).start()
    run = f"off{int(time.time())}"
    send_traffic(server, run)
    wait_until(lambda: server.series(f"sum:selfmon.e2e.hits{{run:{run}}}", *window()), timeout=10,
               what="the DogStatsD count")
    time.sleep(2.5)
    assert server.series("sum:sightline.storage_points_written.count{*}.as_count()", *window()) == []
    assert server.series("max:sightline.storage_series{*}", *window()) == []
    r = requests.get(server.http + "/api/v1/metrics", params={"from": int(time.time()) - 300}, timeout=10)
    assert not [m for m in r.json()["metrics"] if m.startswith("sightline.")], r.json()


def test_bad_interval_is_refused_naming_the_flag(make_server):
    server = make_server(extra_args=["--self-monitoring-interval", "5x"])
    with pytest.raises(RuntimeError, match="self-monitoring-interval"):
        server.start(timeout=20)
