"""Logs end to end on the real binary: util-linux `logger` over TCP (RFC 5424, octet counting) and UDP
(RFC 3164), `datadog-api-client` LogsApi.submit_log / list_logs, kill -9 after acknowledged intake, and
bad input (malformed JSON, malformed search, unparseable syslog frames)."""

import json
import socket
import subprocess
import time
import uuid

import requests
from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.model.http_log import HTTPLog
from datadog_api_client.v2.model.http_log_item import HTTPLogItem
from datadog_api_client.v2.model.logs_list_request import LogsListRequest
from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
from datadog_api_client.v2.model.logs_sort import LogsSort

from conftest import wait_until
from helpers import messages, search


def logger(*args):
    subprocess.run(["logger", *args], check=True, timeout=10)


def test_logger_tcp_rfc5424_octet_counting(server):
    tag = uuid.uuid4().hex[:12]
    started = time.time()
    logger("--rfc5424", "--octet-count", "--tcp", "--server", "127.0.0.1", "--port", str(server.syslog_port),
           "-t", "billing", "-p", "local0.err", f"payment {tag} failed for order_id=991")
    found = wait_until(lambda: search(server, f"{tag}")["data"], timeout=5, what="the TCP syslog line")
    # Searchable within 2 s of being sent (the poll interval adds at most 0.2 s).
    assert time.time() - started < 2.5
    a = found[0]["attributes"]
    assert a["message"] == f"payment {tag} failed for order_id=991"
    assert a["service"] == "billing"
    assert a["status"] == "error"
    assert a["attributes"]["syslog"]["appname"] == "billing"
    assert messages(server, f"service:billing status:error {tag}") == [a["message"]]
    assert messages(server, f"order_id {tag}") == [a["message"]]


def test_logger_udp_rfc3164(server):
    tag = uuid.uuid4().hex[:12]
    logger("--rfc3164", "--udp", "--server", "127.0.0.1", "--port", str(server.syslog_port),
           "-t", "cron", "-p", "user.warning", f"job {tag} took too long")
    found = wait_until(lambda: search(server, tag)["data"], timeout=5, what="the UDP syslog line")
    a = found[0]["attributes"]
    assert a["message"] == f"job {tag} took too long"
    assert a["service"] == "cron"
    assert a["status"] == "warning"


def test_raw_lines_over_tcp_are_detected_and_garbage_is_kept(server):
    tag = uuid.uuid4().hex[:12]
    lines = [
        json.dumps({"message": f"json {tag}", "level": "ERROR", "service": "api", "http": {"status_code": 502}}),
        f'level=warn msg="logfmt {tag}" service=api duration_ms=31',
        # CLF carries its own time: now, so that the search's time range finds it.
        time.strftime("10.1.2.3 - - [%d/%b/%Y:%H:%M:%S +0000] ", time.gmtime())
        + f'"GET /clf/{tag} HTTP/1.1" 404 12 "-" "curl/8"',
        f"plain text {tag}",
        f'{{"broken json {tag}',
        f"<999>not really syslog {tag}",
    ]
    before = server.self_metric("sightline_logs_unparsed_total", reason="json")
    with socket.create_connection(("127.0.0.1", server.syslog_port)) as s:
        s.sendall(("\n".join(lines) + "\n").encode())
    found = wait_until(lambda: len(search(server, tag)["data"]) == 6 and search(server, tag)["data"],
                       timeout=5, what="six raw lines")
    by_msg = {d["attributes"]["message"]: d["attributes"] for d in found}
    assert by_msg[f"json {tag}"]["status"] == "error"
    assert by_msg[f"json {tag}"]["attributes"]["http"]["status_code"] == 502
    assert by_msg[f"logfmt {tag}"]["status"] == "warning"
    clf = [a for m, a in by_msg.items() if "/clf/" in m][0]
    assert clf["attributes"]["http"]["status_code"] == 404
    assert clf["attributes"]["network"]["client"]["ip"] == "10.1.2.3"
    assert f"plain text {tag}" in by_msg
    # Lines that look like JSON or syslog but are not are kept whole, as plain text, and counted.
    assert f'{{"broken json {tag}' in by_msg
    assert f"<999>not really syslog {tag}" in by_msg
    assert wait_until(lambda: server.self_metric("sightline_logs_unparsed_total", reason="json") >= before + 1,
                      timeout=5, what="unparsed lines counted")
    assert messages(server, f"@http.status_code:>=500 {tag}") == [f"json {tag}"]
    assert len(messages(server, f"CIDR(@network.client.ip, 10.0.0.0/8) {tag}")) == 1


def test_datadog_api_client_submit_and_list(server, api):
    tag = uuid.uuid4().hex[:12]
    items = [
        HTTPLogItem(ddsource="python", ddtags=f"env:test,run:{tag}", hostname="h1", service="shop",
                    message=f"order {i} placed {tag}", status="info" if i % 3 else "error", order_id=i)
        for i in range(25)
    ]
    LogsApi(api).submit_log(body=HTTPLog(items))
    wait_until(lambda: len(search(server, tag)["data"]) == 25, timeout=5, what="25 submitted logs")

    # list_logs pages through with the cursor, newest first, with no duplicates.
    seen = []
    cursor = None
    while True:
        page = LogsListRequestPage(limit=10, cursor=cursor) if cursor else LogsListRequestPage(limit=10)
        resp = LogsApi(api).list_logs(body=LogsListRequest(
            filter=LogsQueryFilter(query=f"service:shop run:{tag}", _from="now-1h", to="now+1m"),
            sort=LogsSort.TIMESTAMP_DESCENDING, page=page))
        seen += [d.attributes.message for d in resp.data]
        meta = resp.get("meta")
        cursor = meta.page.after if meta and meta.get("page") and meta.page.get("after") else None
        if not cursor:
            break
    assert len(seen) == 25 and len(set(seen)) == 25
    errors = LogsApi(api).list_logs(body=LogsListRequest(
        filter=LogsQueryFilter(query=f"status:error run:{tag} @order_id:>=10", _from="now-1h", to="now+1m"),
        page=LogsListRequestPage(limit=100)))
    assert sorted(d.attributes.message for d in errors.data) == [f"order {i} placed {tag}" for i in (12, 15, 18, 21, 24)]
    first = errors.data[0].attributes
    assert first.service == "shop" and first.host == "h1"
    assert f"env:test" in first.tags


def test_kill9_after_acknowledged_intake_keeps_every_log_once(make_server):
    s = make_server().start()
    tag = uuid.uuid4().hex[:12]
    acked = []
    for batch in range(20):
        body = [{"message": f"durable {tag} {batch}-{i}", "service": "dur"} for i in range(50)]
        r = requests.post(s.http + "/api/v2/logs", json=body, timeout=10)
        assert r.status_code == 202, r.text
        acked += [b["message"] for b in body]
    s.kill9()
    s.start()
    got = messages(s, f"durable {tag}", limit=5000)
    assert len(got) == len(acked) == 1000
    assert sorted(got) == sorted(acked)
    # A second restart replays nothing twice either.
    s.restart()
    assert len(messages(s, f"durable {tag}", limit=5000)) == 1000


def test_bad_input_is_named(server):
    r = requests.post(server.http + "/api/v2/logs", data=b'[{"message": "a"}, {"message": ', timeout=10,
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert "json" in err.lower() and "line 1" in err, err

    r = requests.post(server.http + "/api/v2/logs/events/search",
                      json={"filter": {"query": "service:(web OR api"}}, timeout=10)
    assert r.status_code == 400, r.text
    assert "position" in r.json()["errors"][0], r.text

    r = requests.post(server.http + "/api/v2/logs/events/search",
                      json={"filter": {"query": "*", "from": "yesterday"}}, timeout=10)
    assert r.status_code == 400 and "yesterday" in r.json()["errors"][0], r.text


def aggregate(server, body):
    r = requests.post(server.http + "/api/v2/logs/analytics/aggregate", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["data"]["buckets"]


def test_aggregations_are_exact(server, api):
    from datadog_api_client.v2.model.logs_aggregate_request import LogsAggregateRequest
    from datadog_api_client.v2.model.logs_compute import LogsCompute
    from datadog_api_client.v2.model.logs_aggregation_function import LogsAggregationFunction
    from datadog_api_client.v2.model.logs_compute_type import LogsComputeType
    from datadog_api_client.v2.model.logs_group_by import LogsGroupBy

    tag = uuid.uuid4().hex[:12]
    # 300 records: service a/b/c in turn, durations 1..300 ms, users u0..u9, status error every 7th.
    base_ms = int(time.time() * 1000) - 60_000
    body = [{"message": f"req {tag} {i}", "service": "abc"[i % 3], "run": tag, "duration": i + 1,
             "usr": {"id": f"u{i % 10}"}, "status": "error" if i % 7 == 0 else "info",
             "timestamp": base_ms + i * 100}
            for i in range(300)]
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text
    q = {"query": f"@run:{tag}", "from": str(base_ms - 1000), "to": "now+1m"}
    wait_until(lambda: aggregate(server, {"filter": q})[0]["computes"]["c0"] == 300, timeout=5,
               what="300 records counted")

    b = aggregate(server, {"filter": q, "compute": [
        {"aggregation": "count"},
        {"aggregation": "sum", "metric": "@duration"},
        {"aggregation": "avg", "metric": "@duration"},
        {"aggregation": "min", "metric": "@duration"},
        {"aggregation": "max", "metric": "@duration"},
        {"aggregation": "cardinality", "metric": "@usr.id"},
        {"aggregation": "pc99", "metric": "@duration"},
        {"aggregation": "pc75", "metric": "@duration"},
    ]})
    c = b[0]["computes"]
    assert (c["c0"], c["c1"], c["c2"], c["c3"], c["c4"], c["c5"]) == (300, 45150, 150.5, 1, 300, 10)
    durations = sorted(range(1, 301))
    for key, q_ in (("c6", 0.99), ("c7", 0.75)):
        exact = durations[int(q_ * (len(durations) - 1))]
        assert abs(c[key] - exact) <= 0.01 * exact + 1e-9, (key, c[key], exact)

    # Group by service, sorted by count; errors per service; a time series per group.
    b = aggregate(server, {"filter": dict(q, query=f"@run:{tag} status:error"),
                           "group_by": [{"facet": "service", "limit": 10,
                                         "sort": {"aggregation": "count", "order": "desc"}}]})
    got = {x["by"]["service"]: x["computes"]["c0"] for x in b}
    expected = {}
    for i in range(0, 300, 7):
        expected["abc"[i % 3]] = expected.get("abc"[i % 3], 0) + 1
    assert got == expected
    counts = [x["computes"]["c0"] for x in b]
    assert counts == sorted(counts, reverse=True)

    b = aggregate(server, {"filter": q, "compute": [{"aggregation": "count", "type": "timeseries",
                                                     "interval": "10s"}],
                           "group_by": [{"facet": "@usr.id", "limit": 3,
                                         "sort": {"type": "alphabetical", "order": "asc"}}]})
    assert [x["by"]["@usr.id"] for x in b] == ["u0", "u1", "u2"]
    for x in b:
        series = x["computes"]["c0"]
        assert sum(p["value"] or 0 for p in series) == 30
        assert all(p["time"].endswith("Z") for p in series)

    # The official client reads the same response.
    resp = LogsApi(api).aggregate_logs(body=LogsAggregateRequest(
        compute=[LogsCompute(aggregation=LogsAggregationFunction.COUNT, type=LogsComputeType.TOTAL)],
        filter=LogsQueryFilter(query=f"@run:{tag}", _from=str(base_ms - 1000), to="now+1m"),
        group_by=[LogsGroupBy(facet="service")]))
    assert sorted((bk.by["service"], bk.computes["c0"]) for bk in resp.data.buckets) == [("a", 100), ("b", 100), ("c", 100)]


def test_live_tail_gets_matching_lines_within_2s(server):
    import threading

    tag = uuid.uuid4().hex[:12]
    events = []
    ready = threading.Event()

    def reader():
        with requests.get(server.http + "/api/ui/logs/tail", params={"query": f"service:tailme {tag}"},
                          stream=True, timeout=10) as r:
            assert r.status_code == 200, r.text
            assert r.headers["content-type"].startswith("text/event-stream")
            ready.set()
            event = None
            for line in r.iter_lines(decode_unicode=True):
                if line.startswith("event:"):
                    event = line.split(":", 1)[1].strip()
                elif line.startswith("data:") and event == "log":
                    events.append((time.time(), json.loads(line.split(":", 1)[1])))
                    return

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    assert ready.wait(5)
    time.sleep(0.2)
    # A non-matching line first (other service), then a matching one.
    r = requests.post(server.http + "/api/v2/logs", json=[{"message": f"nope {tag}", "service": "other"}], timeout=5)
    assert r.status_code == 202
    sent = time.time()
    r = requests.post(server.http + "/api/v2/logs", json=[{"message": f"yes {tag}", "service": "tailme"}], timeout=5)
    assert r.status_code == 202
    t.join(5)
    assert events, "no line arrived on the live tail"
    at, first = events[0]
    assert first["message"] == f"yes {tag}"
    assert at - sent < 2.0

    r = requests.get(server.http + "/api/ui/logs/tail", params={"query": "service:(a OR"}, timeout=5)
    assert r.status_code == 400 and "position" in r.json()["errors"][0], r.text
