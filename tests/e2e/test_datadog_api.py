"""Datadog metrics API end to end: `datadog-api-client` submit_metrics and query_metrics pointed at the real
binary, plus v1 series and distribution points over plain HTTP."""

import gzip
import json
import time
import zlib

import pytest
import requests
from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
from datadog_api_client.v2.api.metrics_api import MetricsApi
from datadog_api_client.v2.model.metric_content_encoding import MetricContentEncoding
from datadog_api_client.v2.model.metric_intake_type import MetricIntakeType
from datadog_api_client.v2.model.metric_payload import MetricPayload
from datadog_api_client.v2.model.metric_point import MetricPoint
from datadog_api_client.v2.model.metric_resource import MetricResource
from datadog_api_client.v2.model.metric_series import MetricSeries

from helpers import total, values


def aligned_now():
    now = int(time.time())
    return now - now % 60


def submit(api, series, encoding=None):
    kwargs = {} if encoding is None else {"content_encoding": encoding}
    resp = MetricsApi(api).submit_metrics(body=MetricPayload(series=series), **kwargs)
    assert resp.errors == [], resp


def test_submit_and_query_with_official_client(server, api):
    t0 = aligned_now() - 600
    submit(api, [
        MetricSeries(metric="api.orders", type=MetricIntakeType.COUNT,
                     points=[MetricPoint(timestamp=t0 + 10 * i, value=float(i + 1)) for i in range(6)],
                     tags=["env:prod"], resources=[MetricResource(name="web-1", type="host")]),
        MetricSeries(metric="api.orders", type=MetricIntakeType.COUNT,
                     points=[MetricPoint(timestamp=t0 + 10 * i, value=100.0) for i in range(6)],
                     tags=["env:prod"], resources=[MetricResource(name="web-2", type="host")]),
        MetricSeries(metric="api.cpu", type=MetricIntakeType.GAUGE,
                     points=[MetricPoint(timestamp=t0 + 10 * i, value=float(10 * i)) for i in range(6)],
                     tags=["env:prod", "host:web-1"]),
    ], encoding=MetricContentEncoding.DEFLATE)
    submit(api, [MetricSeries(metric="api.rps", type=MetricIntakeType.RATE, interval=10,
                              points=[MetricPoint(timestamp=t0, value=2.5)], tags=["env:prod"])],
           encoding=MetricContentEncoding.GZIP)

    q = MetricsApiV1(api)
    res = q.query_metrics(_from=t0 - 60, to=t0 + 120, query="sum:api.orders{env:prod} by {host}")
    assert res.status == "ok"
    got = {",".join(s.tag_set): [p.value[1] for p in s.pointlist if p.value[1] is not None] for s in res.series}
    assert got == {"host:web-1": [1, 2, 3, 4, 5, 6], "host:web-2": [100] * 6}, got
    assert all(s.interval == 10 for s in res.series)

    # Count kind defaults to as_count; as_rate divides by the interval.
    assert total(server.series("sum:api.orders{host:web-1}", t0 - 60, t0 + 120)) == 21
    assert values(server.series("sum:api.orders{host:web-1}.as_rate()", t0 - 60, t0 + 120))[:2] == \
        [pytest.approx(0.1), pytest.approx(0.2)]
    # Rate kind: stored as count over the interval, shown per second by default.
    assert values(server.series("sum:api.rps{*}", t0 - 60, t0 + 120)) == [2.5]
    assert values(server.series("sum:api.rps{*}.as_count()", t0 - 60, t0 + 120)) == [25]

    # Rollups.
    assert values(server.series("sum:api.orders{*}.rollup(sum, 60)", t0 - 60, t0 + 120)) == [621]
    assert values(server.series("avg:api.cpu{*}.rollup(max, 60)", t0 - 60, t0 + 120)) == [50]
    assert values(server.series("avg:api.cpu{*}.rollup(avg, 60)", t0 - 60, t0 + 120)) == [25]

    # Arithmetic between queries and with numbers.
    s = server.series("sum:api.orders{host:web-2} - sum:api.orders{host:web-1}", t0 - 60, t0 + 120)
    assert values(s[0]) == [99, 98, 97, 96, 95, 94]
    s = server.series("avg:api.cpu{*} * 2 + 1", t0 - 60, t0 + 120)
    assert values(s[0]) == [1, 21, 41, 61, 81, 101]
    s = server.series("sum:api.orders{host:web-1}, avg:api.cpu{*}", t0 - 60, t0 + 120)
    assert [x["query_index"] for x in s] == [0, 1]


def test_fills(server, api):
    t0 = aligned_now() - 1200
    submit(api, [MetricSeries(metric="api.sparse", type=MetricIntakeType.GAUGE,
                              points=[MetricPoint(timestamp=t0, value=10.0),
                                      MetricPoint(timestamp=t0 + 40, value=50.0)])])

    def pts(q):
        s = server.series(q, t0, t0 + 49)
        return [v for _, v in s[0]["pointlist"]]

    assert pts("avg:api.sparse{*}") == [10, None, None, None, 50]
    assert pts("avg:api.sparse{*}.fill(zero)") == [10, 0, 0, 0, 50]
    assert pts("avg:api.sparse{*}.fill(last)") == [10, 10, 10, 10, 50]
    assert pts("avg:api.sparse{*}.fill(linear)") == [10, 20, 30, 40, 50]
    assert pts("avg:api.sparse{*}.fill(null)") == [10, None, None, None, 50]


def test_v1_series_and_distribution_points(server):
    t0 = aligned_now() - 300
    body = {"series": [
        {"metric": "v1.load", "points": [[t0, 1.5], [t0 + 10, 2.5]], "type": "gauge", "host": "h1",
         "tags": ["env:test"]},
        {"metric": "v1.jobs", "points": [[t0, 4]], "type": "count", "interval": 10, "host": "h1"},
    ]}
    r = requests.post(server.http + "/api/v1/series", data=gzip.compress(json.dumps(body).encode()),
                      headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert r.status_code == 202 and r.json() == {"errors": []}, r.text
    dist = {"series": [{"metric": "v1.dist", "points": [[t0, [1, 2, 3, 4, 100]]], "host": "h1"}]}
    r = requests.post(server.http + "/api/v1/distribution_points", data=zlib.compress(json.dumps(dist).encode()),
                      headers={"Content-Type": "application/json", "Content-Encoding": "deflate"})
    assert r.status_code == 202, r.text
    assert values(server.series("avg:v1.load{host:h1}", t0 - 60, t0 + 60)) == [1.5, 2.5]
    assert total(server.series("sum:v1.jobs{*}.as_count()", t0 - 60, t0 + 60)) == 4
    assert values(server.series("max:v1.dist{*}", t0 - 60, t0 + 60)) == [100]
    assert values(server.series("count:v1.dist{*}", t0 - 60, t0 + 60)) == [5]


def test_metadata_endpoints(server, api):
    t0 = aligned_now() - 120
    submit(api, [MetricSeries(metric="meta.disk.used", type=MetricIntakeType.GAUGE,
                              points=[MetricPoint(timestamp=t0, value=1.0)], tags=["env:prod", "host:a"]),
                 MetricSeries(metric="meta.disk.free", type=MetricIntakeType.GAUGE,
                              points=[MetricPoint(timestamp=t0, value=1.0)], tags=["host:b"])])
    names = requests.get(server.http + "/api/v1/metrics", params={"from": t0 - 10}).json()["metrics"]
    assert {"meta.disk.used", "meta.disk.free"} <= set(names)
    tags = requests.get(server.http + "/api/v2/metrics/meta.disk.used/all-tags").json()
    assert tags["data"]["attributes"]["tags"] == ["env:prod", "host:a"]
    assert requests.get(server.http + "/api/v2/metrics/nope/all-tags").status_code == 404
    found = requests.get(server.http + "/api/v1/search", params={"q": "metrics:meta.disk"}).json()
    assert sorted(found["results"]["metrics"]) == ["meta.disk.free", "meta.disk.used"]
    ac = requests.get(server.http + "/api/ui/autocomplete",
                      params={"kind": "tag_value", "metric": "meta.disk.used", "prefix": "env:"}).json()
    assert "prod" in ac["values"] or "env:prod" in ac["values"], ac
