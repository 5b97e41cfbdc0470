# Raw tantivy baseline of the logs benchmark (bench/logs.sh): indexes the same corpus files as Sightline with
# the Python `tantivy` package, one indexing thread, ~64 MB writer heap, schema = message text (default
# tokenizer, positions, stored) + timestamp (u64 ms, indexed + fast) + raw string fields (level, service, host,
# user_id; fast) + duration_ms (i64, indexed + fast, for the range query). JSON lines go through
# `IndexWriter.add_json` (parsed in Rust; fields not in the schema, e.g. `http`, are ignored); plain lines are
# the message with the ingestion time as timestamp, as Sightline does. Each file is one phase ending with a
# commit; the process CPU time (all threads) of each phase is measured with time.process_time(). Then
# wait_merging_threads() (its CPU reported apart and in the total). Prints one JSON object per phase and a total.
import argparse
import json
import os
import sys
import time

import tantivy


def schema():
    b = tantivy.SchemaBuilder()
    b.add_text_field("message", stored=True, tokenizer_name="default", index_option="position")
    b.add_unsigned_field("timestamp", stored=True, indexed=True, fast=True)
    for f in ("level", "service", "host", "user_id"):
        b.add_text_field(f, stored=True, tokenizer_name="raw", fast=True)
    b.add_integer_field("duration_ms", stored=True, indexed=True, fast=True)
    return b.build()


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--index", required=True, help="index directory (created)")
    ap.add_argument("--json", help="JSON-lines corpus file")
    ap.add_argument("--plain", help="plain-text corpus file")
    ap.add_argument("--heap", type=int, default=64_000_000)
    a = ap.parse_args()
    os.makedirs(a.index, exist_ok=True)
    index = tantivy.Index(schema(), path=a.index, reuse=False)
    writer = index.writer(heap_size=a.heap, num_threads=1)
    out = []
    total_bytes = total_lines = 0
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for flavour, path in (("json", a.json), ("plain", a.plain)):
        if not path:
            continue
        c0, w0 = time.process_time(), time.perf_counter()
        nbytes = nlines = bad = 0
        with open(path, "rb") as f:
            if flavour == "json":
                add = writer.add_json
                for raw in f:
                    nbytes += len(raw)
                    nlines += 1
                    try:
                        add(raw.decode())
                    except ValueError:
                        bad += 1
            else:
                Document = tantivy.Document
                add = writer.add_document
                now = int(time.time() * 1000)
                for raw in f:
                    nbytes += len(raw)
                    nlines += 1
                    if nlines % 1000 == 0:
                        now = int(time.time() * 1000)
                    d = Document(message=raw.decode().rstrip("\n"))
                    d.add_unsigned("timestamp", now)
                    add(d)
        writer.commit()
        c1, w1 = time.process_time(), time.perf_counter()
        cpu, wall = c1 - c0, w1 - w0
        total_bytes += nbytes
        total_lines += nlines
        rec = {"system": "tantivy-py", "phase": flavour, "file": path, "lines": nlines, "bytes": nbytes,
               "rejected": bad, "cpu_s": cpu, "wall_s": wall,
               "mb_per_cpu_s": nbytes / 1e6 / cpu if cpu > 0 else None,
               "wall_mb_s": nbytes / 1e6 / wall if wall > 0 else None}
        print(json.dumps(rec), flush=True)
        out.append(rec)
    c0 = time.process_time()
    writer.wait_merging_threads()
    merge_cpu = time.process_time() - c0
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    size = du(a.index)
    rec = {"system": "tantivy-py", "phase": "total", "lines": total_lines, "bytes": total_bytes,
           "cpu_s": cpu, "merge_wait_cpu_s": merge_cpu, "wall_s": wall,
           "mb_per_cpu_s": total_bytes / 1e6 / cpu if cpu > 0 else None,
           "wall_mb_s": total_bytes / 1e6 / wall if wall > 0 else None,
           "index_bytes": size, "index_bytes_per_raw_byte": size / total_bytes if total_bytes else None,
           "heap_size": a.heap, "num_threads": 1, "tantivy_py": getattr(tantivy, "__version__", None)}
    print(json.dumps(rec), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
