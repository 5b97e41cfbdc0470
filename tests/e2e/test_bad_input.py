"""Bad input end to end: every refusal is a 4xx whose message names the problem, and never costs the other
data of the same request."""

import gzip
import json
import time

import requests

from helpers import total


def post(server, path, body: bytes, **headers):
    headers.setdefault("Content-Type", "application/json")
    return requests.post(server.http + path, data=body, headers=headers, timeout=30)


def test_malformed_json_names_the_position(server):
    r = post(server, "/api/v2/series", b'{"series": [ {"metric": "x", }')
    assert r.status_code == 400
    msg = r.json()["errors"][0]
    assert "malformed json" in msg and "column" in msg, msg


def test_oversized_body_after_decompression(server):
    # 25 MiB of JSON white space compresses to ~25 KiB: refused by its decompressed size.
    raw = b'{"series": [' + b" " * (25 * 1024 * 1024) + b"]}"
    r = post(server, "/api/v2/series", gzip.compress(raw), **{"Content-Encoding": "gzip"})
    assert r.status_code == 413, r.text
    assert "limit" in r.json()["errors"][0]


def test_too_many_tags_rejects_only_that_series(server):
    ts = int(time.time()) - 600
    body = {"series": [
        {"metric": "bad.tags", "type": 3, "points": [{"timestamp": ts, "value": 1}],
         "tags": [f"t{i}:v" for i in range(150)]},
        {"metric": "good.tags", "type": 3, "points": [{"timestamp": ts, "value": 7}], "tags": ["a:b"]},
    ]}
    r = post(server, "/api/v2/series", json.dumps(body).encode())
    assert r.status_code == 202, r.text
    errors = r.json()["errors"]
    assert len(errors) == 1 and "bad.tags" in errors[0] and "150" in errors[0], errors
    assert total(server.series("avg:good.tags{*}", ts - 60, ts + 60)) == 7
    assert server.series("avg:bad.tags{*}", ts - 60, ts + 60) == []

    only_bad = {"series": body["series"][:1]}
    r = post(server, "/api/v2/series", json.dumps(only_bad).encode())
    assert r.status_code == 400 and "bad.tags" in r.json()["errors"][0], r.text


def test_unknown_encoding(server):
    r = post(server, "/api/v2/series", b"{}", **{"Content-Encoding": "br"})
    assert r.status_code == 400 and "br" in r.json()["errors"][0], r.text


def test_malformed_queries_name_the_position(server):
    now = int(time.time())
    for q, frag in [
        ("avg:cpu{host:a", "position"),
        ("avg:cpu{*} by {host", "position"),
        ("avg:cpu{*}.rollup(bogus)", "bogus"),
        ("p99:", "position"),
    ]:
        r = server.query(q, now - 60, now)
        assert r.status_code == 400, (q, r.text)
        msg = r.json()["errors"][0]
        assert frag in msg, (q, msg)
    r = requests.get(server.http + "/api/v1/query", params={"query": "avg:cpu{*}"})
    assert r.status_code == 400 and "from" in r.json()["errors"][0], r.text


def test_query_limits_come_from_config(make_server, tmp_path):
    cfg = tmp_path / "limits.toml"
    cfg.write_text("[limits]\nmax_query_range_secs = 3600\nmax_query_series = 2\nmax_query_raw_points = 100\n")
    s = make_server(extra_args=["--config", str(cfg)]).start()
    now = int(time.time())
    r = s.query("avg:x{*}", now - 7200, now)
    assert r.status_code == 400 and "3600" in r.json()["errors"][0], r.text
    body = {"series": [{"metric": "many", "type": 3, "points": [{"timestamp": now - 60, "value": 1}],
                        "tags": [f"host:h{i}"]} for i in range(3)]}
    assert requests.post(s.http + "/api/v2/series", json=body).status_code == 202
    r = s.query("avg:many{*}", now - 600, now)
    assert r.status_code == 400 and "many" in r.json()["errors"][0], r.text
    assert s.query("avg:many{host:h1}", now - 600, now).status_code == 200  # the cap counts matching series
    # One series over 50 minutes at 10 s is about 300 raw points: over the configured 100.
    r = s.query("avg:many{host:h1}", now - 3000, now)
    assert r.status_code == 400 and "raw points" in r.json()["errors"][0], r.text


def test_percentile_on_a_gauge_is_a_clear_error(server):
    ts = int(time.time()) - 600
    r = post(server, "/api/v2/series", json.dumps({"series": [
        {"metric": "plain.gauge", "type": 3, "points": [{"timestamp": ts, "value": 1}]}]}).encode())
    assert r.status_code == 202
    r = server.query("p99:plain.gauge{*}", ts - 60, ts + 60)
    assert r.status_code == 400 and "plain.gauge" in r.json()["errors"][0], r.text
