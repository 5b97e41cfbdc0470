"""Durability end to end: kill -9 right after acknowledged writes loses nothing; a write-ahead log with a torn
or bit-flipped tail is recovered on a copied data dir."""

import shutil
import time
from pathlib import Path

import requests

from conftest import Server
from helpers import total


def post_point(server, name, ts, value):
    body = {"series": [{"metric": name, "type": 1, "points": [{"timestamp": ts, "value": value}],
                        "tags": ["t:dur"]}]}
    r = requests.post(server.http + "/api/v2/series", json=body, timeout=10)
    assert r.status_code == 202, r.text


def count(server, name, start, end):
    return total(server.series(f"sum:{name}{{*}}.as_count()", start, end))


def test_kill9_loses_no_acknowledged_write(tmp_path):
    s = Server(tmp_path / "data").start()
    t0 = int(time.time()) - 3000
    for i in range(300):
        post_point(s, "dur.acked", t0 + i, 1)
    s.kill9()  # immediately after the last acknowledgement
    s.start()
    try:
        assert count(s, "dur.acked", t0 - 10, t0 + 400) == 300
    finally:
        s.stop()


def last_wal_segment(data_dir: Path) -> Path:
    segs = sorted(p for p in data_dir.rglob("*.wal") if p.stat().st_size > 0)
    assert segs, f"no wal segment under {data_dir}"
    return segs[-1]


def damaged_copy(tmp_path, src: Path, name: str, damage) -> Server:
    dst = tmp_path / name
    shutil.copytree(src, dst)
    damage(last_wal_segment(dst))
    return Server(dst)


def test_torn_and_bit_flipped_tails_are_cut(tmp_path):
    s = Server(tmp_path / "orig").start()
    t0 = int(time.time()) - 3000
    for i in range(50):
        post_point(s, "dur.tail", t0 + i, 1)
    s.kill9()

    def truncate(seg):
        size = seg.stat().st_size
        with open(seg, "r+b") as f:
            f.truncate(size - 3)

    def flip(seg):
        data = bytearray(seg.read_bytes())
        data[-5] ^= 0x40
        seg.write_bytes(bytes(data))

    for name, damage in [("torn", truncate), ("flipped", flip)]:
        c = damaged_copy(tmp_path, tmp_path / "orig", name, damage)
        c.start()
        try:
            assert requests.get(c.http + "/readyz").status_code == 200
            assert count(c, "dur.tail", t0 - 10, t0 + 100) == 49, name
            assert c.self_metric("sightline_wal_corrupt_tails_total") >= 1, name
            assert "corrupt" in c.read_log().lower() or "torn" in c.read_log().lower(), name
        finally:
            c.stop()
    # The undamaged original still has all 50.
    s.start()
    try:
        assert count(s, "dur.tail", t0 - 10, t0 + 100) == 50
    finally:
        s.stop()
