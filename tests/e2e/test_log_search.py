"""Log search through the real binary: the fixed corpus of query/tests/golden/log_search.json is sent to
`POST /api/v2/logs` (as a Datadog client would), and every query of that file is run through
`POST /api/v2/logs/events/search`, scoped to this run, and must find exactly the expected number of logs."""

import json
import time
import uuid
from pathlib import Path

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
