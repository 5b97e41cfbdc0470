# Search latency of the logs benchmark (bench/logs.sh): the same queries against Sightline's HTTP API
# (`POST /api/v2/logs/events/search`, newest first, page of 50, client-side wall time per request over one
# keep-alive connection), against raw tantivy (the Python package on the baseline index: the search call with
# the same top-50-by-timestamp collector, and that call plus fetching the 50 stored documents), and `grep -c`
# over the raw corpus files (wall time of the whole process). Also checks the counts: Sightline's
# `analytics/aggregate` count vs tantivy's count vs grep's count. One JSON object per query and system on stdout.
#
#   search_latency.py queries --json-stats J --json-file F --plain-file F   # the query table as JSON
#   search_latency.py sightline --http ADDR --queries Q [--runs 50]
#   search_latency.py tantivy --index DIR --queries Q [--runs 50]
#   search_latency.py grep --queries Q [--runs 3]
import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time

WARMUP = 5


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return None
    k = (len(xs) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(ms):
    return {"runs": len(ms), "p50_ms": pct(ms, 50), "p99_ms": pct(ms, 99), "min_ms": min(ms), "max_ms": max(ms),
            "mean_ms": statistics.fmean(ms)}


def middle_json_line(path):
    """The request id of the line in the middle of the file (a unique term)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(size // 2)
        f.readline()
        line = f.readline().decode()
    return line[line.rfind("req ") + 4:].split('"')[0].strip()


def build_queries(a):
    st = json.load(open(a.json_stats))
    first, last = st["first_ts_ms"], st["last_ts_ms"]
    # A time window aligned on 10^k ms, so that grep can match it with a fixed prefix and k digits.
    k = 7
    while k > 3 and 10 ** k > (last - first) / 4:
        k -= 1
    block = (first + (last - first) // 2) // 10 ** k
    t_from, t_to = block * 10 ** k, (block + 1) * 10 ** k
    files = [a.json_file, a.plain_file]
    rid = middle_json_line(a.json_file)
    dur = r'(5[0-9][0-9]|[6-9][0-9][0-9]|1000)'
    q = [
        {"name": "rare_id", "selective": True, "what": "unique request id (1 line)", "query": rid,
         "tantivy": {"kind": "term", "words": [rid]}, "grep": ["-F", rid]},
        {"name": "rare_term", "selective": True, "what": "token in 1 of 100k lines", "query": "zebrafault",
         "tantivy": {"kind": "term", "words": ["zebrafault"]}, "grep": ["-F", "zebrafault"]},
        {"name": "common_term", "what": "word in ~40% of lines", "query": "completed",
         "tantivy": {"kind": "term", "words": ["completed"]}, "grep": ["-F", "completed"]},
        {"name": "two_term_and", "selective": True, "what": "payment (6%) AND declined (3%): ~1%", "query": "payment declined",
         "tantivy": {"kind": "and", "words": ["payment", "declined"]},
         "grep": ["-E", "payment.*declined|declined.*payment"]},
        {"name": "phrase", "selective": True, "what": "\"connection reset by peer\"", "query": '"connection reset by peer"',
         "tantivy": {"kind": "phrase", "words": ["connection", "reset", "by", "peer"]},
         "grep": ["-F", "connection reset by peer"]},
        {"name": "prefix", "what": "retr* (retrying, retried)", "query": "retr*",
         "tantivy": {"kind": "prefix", "words": ["retr"]}, "grep": ["-E", r"\bretr"]},
        {"name": "range_time", "selective": True, "what": f"@duration_ms:[500 TO 1000], time window {(t_to - t_from) / 3.6e6:.2f} h",
         "query": "@duration_ms:[500 TO 1000]", "from_ms": t_from, "to_ms": t_to,
         "tantivy": {"kind": "range_time", "lo": 500, "hi": 1000, "from_ms": t_from, "to_ms": t_to},
         "grep": ["-E", f'"timestamp":{block}[0-9]{{{k}}},.*"duration_ms":{dur},']},
    ]
    json.dump({"files": files, "first_ts_ms": first, "queries": q}, sys.stdout)
    print()


def sightline(a):
    spec = json.load(open(a.queries))
    host, port = a.http.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    now = int(time.time() * 1000)
    default_from, default_to = spec["first_ts_ms"] - 3600_000, now + 3600_000

    def post(path, body):
        data = json.dumps(body)
        conn.request("POST", path, body=data, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        raw = r.read()
        if r.status != 200:
            raise RuntimeError(f"{path}: {r.status} {raw[:300]!r}")
        return json.loads(raw)

    for q in spec["queries"]:
        flt = {"query": q["query"], "from": str(q.get("from_ms", default_from)), "to": str(q.get("to_ms", default_to))}
        body = {"filter": flt, "sort": "-timestamp", "page": {"limit": a.limit}}
        try:
            agg = post("/api/v2/logs/analytics/aggregate",
                       {"filter": flt, "compute": [{"aggregation": "count", "type": "total"}]})
            buckets = agg["data"]["buckets"]
            count = int(buckets[0]["computes"]["c0"]) if buckets else 0
            for _ in range(WARMUP):
                post("/api/v2/logs/events/search", body)
            ms, server_ms, hits = [], [], 0
            for _ in range(a.runs):
                t0 = time.perf_counter()
                r = post("/api/v2/logs/events/search", body)
                ms.append((time.perf_counter() - t0) * 1000)
                server_ms.append(r["meta"].get("elapsed", 0))
                hits = len(r["data"])
            rec = {"system": "sightline", "query": q["name"], "q": q["query"], "count": count, "page_hits": hits,
                   **summary(ms), "server_elapsed_p50_ms": pct(server_ms, 50)}
        except Exception as e:  # report and go on with the next query
            rec = {"system": "sightline", "query": q["name"], "q": q["query"], "error": str(e)}
        print(json.dumps(rec), flush=True)
    # The floor: the same request shape on a time range without partitions (HTTP, parsing, JSON only).
    body = {"filter": {"query": "x", "from": "0", "to": "1000"}, "sort": "-timestamp", "page": {"limit": a.limit}}
    for _ in range(WARMUP):
        post("/api/v2/logs/events/search", body)
    ms = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        post("/api/v2/logs/events/search", body)
        ms.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({"system": "sightline", "query": "http_floor", "q": "x, from 0 to 1000 ms", **summary(ms)}),
          flush=True)


def tantivy_q(tv, schema, t):
    kind = t["kind"]
    if kind == "term":
        return tv.Query.term_query(schema, "message", t["words"][0])
    if kind == "and":
        return tv.Query.boolean_query([(tv.Occur.Must, tv.Query.term_query(schema, "message", w)) for w in t["words"]])
    if kind == "phrase":
        return tv.Query.phrase_query(schema, "message", t["words"])
    if kind == "prefix":
        return tv.Query.regex_query(schema, "message", t["words"][0] + ".*")
    if kind == "range_time":
        return tv.Query.boolean_query([
            (tv.Occur.Must, tv.Query.range_query(schema, "duration_ms", tv.FieldType.Integer, t["lo"], t["hi"])),
            (tv.Occur.Must, tv.Query.range_query(schema, "timestamp", tv.FieldType.Unsigned, t["from_ms"],
                                                 t["to_ms"] - 1)),
        ])
    raise ValueError(kind)


def tantivy_mode(a):
    import tantivy as tv
    spec = json.load(open(a.queries))
    index = tv.Index.open(a.index)
    index.reload()
    searcher = index.searcher()
    schema = index.schema
    for q in spec["queries"]:
        query = tantivy_q(tv, schema, q["tantivy"])
        count = searcher.search(query, limit=1, count=True).count

        def one(fetch):
            t0 = time.perf_counter()
            res = searcher.search(query, limit=a.limit, count=False, order_by_field="timestamp", order=tv.Order.Desc)
            if fetch:
                for _, addr in res.hits:
                    searcher.doc(addr)
            return (time.perf_counter() - t0) * 1000, len(res.hits)

        out = {}
        for fetch in (False, True):
            for _ in range(WARMUP):
                one(fetch)
            ms = []
            for _ in range(a.runs):
                t, hits = one(fetch)
                ms.append(t)
            out[fetch] = (summary(ms), hits)
        s, hits = out[False]
        f, _ = out[True]
        rec = {"system": "tantivy-py", "query": q["name"], "count": count, "page_hits": hits, **s,
               "fetch_p50_ms": f["p50_ms"], "fetch_p99_ms": f["p99_ms"]}
        print(json.dumps(rec), flush=True)


def grep_mode(a):
    spec = json.load(open(a.queries))
    for q in spec["queries"]:
        ms, count = [], None
        for _ in range(a.runs):
            t0 = time.perf_counter()
            p = subprocess.run(["grep", "-c", "-h", *q["grep"], *spec["files"]], capture_output=True, text=True,
                               env={**os.environ, "LC_ALL": "C"})
            ms.append((time.perf_counter() - t0) * 1000)
            count = sum(int(x) for x in p.stdout.split())
        rec = {"system": "grep", "query": q["name"], "count": count, "cmd": "grep -c -h " + " ".join(q["grep"]),
               **summary(ms)}
        print(json.dumps(rec), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["queries", "sightline", "tantivy", "grep"])
    ap.add_argument("--json-stats")
    ap.add_argument("--json-file")
    ap.add_argument("--plain-file")
    ap.add_argument("--queries")
    ap.add_argument("--http")
    ap.add_argument("--index")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--limit", type=int, default=50)
    a = ap.parse_args()
    {"queries": build_queries, "sightline": sightline, "tantivy": tantivy_mode, "grep": grep_mode}[a.mode](a)


if __name__ == "__main__":
    main()
