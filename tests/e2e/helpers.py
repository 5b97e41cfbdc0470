"""Small shared helpers for the end-to-end tests: bucket alignment, series sums, exact quantiles, log search."""

import math
import random
import time

import requests


def wait_for_bucket_start(margin=6.0):
    """Sleeps until at least `margin` seconds remain in the current 10 s DogStatsD bucket, so that a quick
    burst of sends lands in one bucket."""
    while 10 - (time.time() % 10) < margin:
        time.sleep(0.1)


def values(series_entry):
    """Non-null values of one series entry; an empty list of series (no data yet) gives []."""
    if isinstance(series_entry, list):
        if not series_entry:
            return []
        assert len(series_entry) == 1, f"expected one series, got {len(series_entry)}"
        series_entry = series_entry[0]
    return [v for _, v in series_entry["pointlist"] if v is not None]


def total(series_list):
    return sum(sum(values(s)) for s in series_list)


def by_group(series_list):
    """Series keyed by their group tags (`tag_set` joined with commas, `*` for none)."""
    return {",".join(s["tag_set"]) or "*": s for s in series_list}


def skewed_samples(n, seed=7):
    """Log-normal latencies (ms): a long right tail, like real request latencies."""
    rng = random.Random(seed)
    return [round(math.exp(rng.gauss(3.0, 1.1)), 3) for _ in range(n)]


def exact_quantile(samples, q):
    s = sorted(samples)
    return s[int(math.floor(q * (len(s) - 1)))]


def assert_close(got, want, rel=0.01, what=""):
    assert got is not None, f"{what}: no value"
    assert abs(got - want) <= rel * abs(want) + 1e-9, f"{what}: got {got}, want {want} (±{rel:.1%})"


def search(server, query, limit=1000, sort="-timestamp", frm="now-1h", to="now+1m", cursor=None):
    """`POST /api/v2/logs/events/search` on `server`: the whole answer (`data`, `meta`, `links`), asserting 200."""
    body = {"filter": {"query": query, "from": frm, "to": to}, "sort": sort, "page": {"limit": limit}}
    if cursor:
        body["page"]["cursor"] = cursor
    r = requests.post(server.http + "/api/v2/logs/events/search", json=body, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def messages(server, query, **kw):
    """The messages of the logs `search` finds, newest first."""
    return [d["attributes"]["message"] for d in search(server, query, **kw)["data"]]
