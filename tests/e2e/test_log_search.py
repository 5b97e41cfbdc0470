"""Log search through the real binary: the fixed corpus of query/tests/golden/log_search.json is sent to
`POST /api/v2/logs` (as a Datadog client would), and every query of that file is run through
`POST /api/v2/logs/events/search`, scoped to this run, and must find exactly the expected number of logs."""

import json
import time
import uuid

import requests

from conftest import REPO, wait_until

GOLDEN = json.loads((REPO / "query" / "tests" / "golden" / "log_search.json").read_text())


def test_golden_search_counts(server):
    run = uuid.uuid4().hex[:12]
    base_ms = int(time.time() * 1000) - 30_000
    body = []
    for i, d in enumerate(GOLDEN["corpus"]):
        item = {"message": d["message"], "status": d["status"], "service": d["service"],
                "hostname": d["host"], "ddsource": d["source"], "ddtags": ",".join(d["tags"] + [f"run:{run}"]),
                "timestamp": base_ms + i * 1000}
        item.update(d["attributes"])
        body.append(item)
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text

    def count(q):
        scoped = f"run:{run}" if q.strip() in ("", "*") else f"run:{run} ({q})"
        r = requests.post(server.http + "/api/v2/logs/events/search", timeout=10, json={
            "filter": {"query": scoped, "from": str(base_ms - 1000), "to": "now+1m"}, "page": {"limit": 1000}})
        assert r.status_code == 200, f"{q!r}: {r.text}"
        return len(r.json()["data"])

    wait_until(lambda: count("*") == len(GOLDEN["corpus"]), timeout=5, what="the corpus to be searchable")
    cases = [c for c in GOLDEN["cases"] if "query" in c]
    assert len(cases) >= 40
    failures = [f"{c['query']!r}: expected {c['count']}, got {got}"
                for c in cases if (got := count(c["query"])) != c["count"]]
    assert not failures, f"{len(failures)} of {len(cases)} failed:\n" + "\n".join(failures)


def test_facet_sidebar_counts(server):
    run = uuid.uuid4().hex[:12]
    body = [{"message": f"m{i}", "service": ["web", "api", "db"][i % 3] if i < 9 else "web",
             "ddtags": f"env:{'prod' if i % 2 else 'dev'},run:{run}", "http": {"method": ["GET", "POST"][i % 2]}}
            for i in range(12)]
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text

    def facets(**params):
        r = requests.get(server.http + "/api/ui/logs/facets", timeout=10,
                         params=dict({"query": f"run:{run}", "from": "now-5m", "to": "now+1m"}, **params))
        assert r.status_code == 200, r.text
        return r.json()

    wait_until(lambda: sum(v["count"] for f in facets(facets="service")["facets"] for v in f["values"]) == 12,
               timeout=5, what="12 logs in the facets")
    got = facets()
    by = {f["facet"]: {v["value"]: v["count"] for v in f["values"]} for f in got["facets"]}
    assert by["service"] == {"web": 6, "api": 3, "db": 3}
    assert [v["value"] for v in got["facets"][1]["values"]][0] == "web"  # most first
    assert by["env"] == {"prod": 6, "dev": 6}
    assert by["status"] == {"info": 12}
    assert "http.method" in got["attributes"]
    assert by["@http.method"] == {"GET": 6, "POST": 6}
    # Narrowed by the search, and limited.
    got = facets(query=f"run:{run} service:web", facets="@http.method,env", limit="1")
    assert [f["facet"] for f in got["facets"]] == ["@http.method", "env"]
    assert all(len(f["values"]) == 1 for f in got["facets"])
    # service:web is records 0, 3, 6, 9, 10, 11: three GET and three POST, three prod and three dev.
    assert got["facets"][0]["values"][0]["count"] == 3
    assert got["facets"][1]["values"][0]["count"] == 3


def test_next_link_continues_the_same_search(server):
    run = uuid.uuid4().hex[:12]
    body = [{"message": f"page {run} {i}", "service": "pg" if i % 2 else "other"} for i in range(30)]
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text
    first = {"filter": {"query": f"{run} service:pg", "from": "now-5m", "to": "now+1m"},
             "sort": "timestamp", "page": {"limit": 4}}

    def post():
        r = requests.post(server.http + "/api/v2/logs/events/search", json=first, timeout=10)
        assert r.status_code == 200, r.text
        return r.json()

    wait_until(lambda: len(post()["data"]) == 4, timeout=5, what="the first page")
    page = post()
    seen = [d["attributes"]["message"] for d in page["data"]]
    # Following links.next (a GET with the whole search in it) walks the same search to its end.
    while "links" in page:
        r = requests.get(server.http + page["links"]["next"], timeout=10)
        assert r.status_code == 200, r.text
        page = r.json()
        seen += [d["attributes"]["message"] for d in page["data"]]
    assert sorted(seen) == sorted(f"page {run} {i}" for i in range(1, 30, 2))
    assert len(seen) == 15
