"""DogStatsD end to end: the `datadog` and `statsd` Python clients and raw datagrams against the real binary,
checked through the Datadog query API."""

import time

import pytest
from statsd import StatsClient

from conftest import wait_until
from helpers import (assert_close, by_group, exact_quantile, skewed_samples, total, values,
                     wait_for_bucket_start)


def window():
    now = int(time.time())
    return now - 120, now + 60


def test_counts_exact_and_grouped(server, dog):
    wait_for_bucket_start()
    for _ in range(300):
        dog.increment("e2e.requests", tags=["host:a", "env:prod"])
    for _ in range(200):
        dog.increment("e2e.requests", tags=["host:b", "env:prod"])
    dog.increment("e2e.requests", value=7, tags=["host:c", "env:dev"])
    dog.flush()
    start, end = window()
    wait_until(lambda: total(server.series("sum:e2e.requests{*}.as_count()", start, end)) == 507,
               what="507 counted requests")
    grouped = by_group(server.series("sum:e2e.requests{*} by {host}.as_count()", start, end))
    assert {k: total([v]) for k, v in grouped.items()} == {"host:a": 300, "host:b": 200, "host:c": 7}
    assert total(server.series("sum:e2e.requests{env:prod}.as_count()", start, end)) == 500
    assert total(server.series("sum:e2e.requests{!env:prod}.as_count()", start, end)) == 7
    assert total(server.series("sum:e2e.requests{host:a OR host:c}.as_count()", start, end)) == 307
    # DogStatsD counts are rates in Datadog: per second by default and with .as_rate(), over 10 s buckets.
    for q in ["sum:e2e.requests{*}.as_rate()", "sum:e2e.requests{*}"]:
        s = server.series(q, start, end)
        assert len(s) == 1 and s[0]["interval"] == 10, s
        assert values(s[0]) == [pytest.approx(50.7)], f"{q}: {values(s[0])}"


def test_gauges_sets_and_sample_rates(server, dog):
    wait_for_bucket_start()
    dog.gauge("e2e.temperature", 10, tags=["host:a"])
    dog.gauge("e2e.temperature", 21.5, tags=["host:a"])
    dog.gauge("e2e.temperature", 3, tags=["host:b"])
    for i in range(200):
        dog.set("e2e.users", f"user-{i % 50}")
    dog.flush()
    server.udp(b"\n".join([b"e2e.sampled:1|c|@0.5"] * 10))
    start, end = window()
    wait_until(lambda: values(server.series("max:e2e.users{*}", start, end)) == [50], what="50 unique users")
    g = by_group(server.series("avg:e2e.temperature{*} by {host}", start, end))
    assert values(g["host:a"]) == [21.5] and values(g["host:b"]) == [3]
    assert values(server.series("sum:e2e.temperature{*}", start, end)) == [24.5]
    assert total(server.series("sum:e2e.sampled{*}.as_count()", start, end)) == 20


def test_etsy_gauge_deltas_and_packed_values(server):
    wait_for_bucket_start()
    server.udp(b"e2e.level:10|g\ne2e.level:+5|g\ne2e.level:-3|g")
    server.udp(b"e2e.packed:1:2:3:4|d|#k:v")
    start, end = window()
    wait_until(lambda: values(server.series("avg:e2e.level{*}", start, end)) == [12], what="gauge 12")
    wait_until(lambda: values(server.series("count:e2e.packed{k:v}", start, end)) == [4], what="4 packed")
    assert values(server.series("max:e2e.packed{*}", start, end)) == [4]
    assert values(server.series("sum:e2e.packed{*}", start, end)) == [10]


def test_timestamped_points_bypass_aggregation(server):
    ts = int(time.time()) - 600
    server.udp(f"e2e.backfill:42|g|#src:old|T{ts}".encode())
    s = wait_until(lambda: server.series("avg:e2e.backfill{*}", ts - 60, ts + 60), what="backfilled point")
    points = [(t, v) for t, v in s[0]["pointlist"] if v is not None]
    assert points == [((ts - ts % 10) * 1000, 42)], points


def test_malformed_line_is_counted_and_others_kept(server):
    before = server.self_metric("sightline_statsd_parse_errors_total")
    wait_for_bucket_start()
    server.udp(b"e2e.good:1|c\nthis is not statsd\ne2e.good2:5|g\ne2e.bad:abc|c\ne2e.good:2|c")
    start, end = window()
    wait_until(lambda: total(server.series("sum:e2e.good{*}.as_count()", start, end)) == 3, what="good count 3")
    assert values(server.series("avg:e2e.good2{*}", start, end)) == [5]
    wait_until(lambda: server.self_metric("sightline_statsd_parse_errors_total") - before == 2,
               what="two parse errors counted")


def test_percentiles_within_one_percent(server, dog):
    samples = skewed_samples(12_000)
    wait_for_bucket_start(margin=8)
    for v in samples:
        dog.distribution("e2e.latency", v, tags=["service:web"])
    dog.flush()
    start, end = window()
    wait_until(lambda: values(server.series("count:e2e.latency{*}", start, end)) == [len(samples)],
               timeout=15, what="all samples stored")
    for name, q in [("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p99.9", 0.999)]:
        got = values(server.series(f"{name}:e2e.latency{{service:web}}", start, end))
        assert len(got) == 1, got
        assert_close(got[0], exact_quantile(samples, q), what=name)
    assert_close(values(server.series("avg:e2e.latency{*}", start, end))[0],
                 sum(samples) / len(samples), rel=1e-6, what="avg")


def test_histogram_derived_series(server, dog):
    samples = [float(i) for i in range(1, 101)]
    wait_for_bucket_start()
    for v in samples:
        dog.histogram("e2e.hist", v)
    for v in samples:
        dog.timing("e2e.timer", v)
    dog.flush()
    start, end = window()
    wait_until(lambda: total(server.series("sum:e2e.hist.count{*}.as_count()", start, end)) == 100,
               what="histogram count")
    assert values(server.series("max:e2e.hist.max{*}", start, end)) == [100]
    assert_close(values(server.series("avg:e2e.hist.avg{*}", start, end))[0], 50.5, rel=1e-9)
    assert_close(values(server.series("avg:e2e.hist.median{*}", start, end))[0], 50, what="median")
    assert_close(values(server.series("avg:e2e.timer.95percentile{*}", start, end))[0], 95, what="p95")


def test_plain_statsd_client(server):
    c = StatsClient("127.0.0.1", server.statsd_port, prefix="etsy")
    wait_for_bucket_start()
    with c.pipeline() as pipe:
        for _ in range(100):
            pipe.incr("hits")
        pipe.gauge("queue", 17)
        pipe.timing("work", 250)
        pipe.set("visitors", "x")
        pipe.set("visitors", "y")
    start, end = window()
    wait_until(lambda: total(server.series("sum:etsy.hits{*}.as_count()", start, end)) == 100, what="100 hits")
    assert values(server.series("avg:etsy.queue{*}", start, end)) == [17]
    assert values(server.series("max:etsy.visitors{*}", start, end)) == [2]
    assert_close(values(server.series("p50:etsy.work{*}", start, end))[0], 250)
