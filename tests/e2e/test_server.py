"""The binary itself: subcommands, config handling, probes, self-metrics and API/application-key auth."""

import json
import os
import subprocess
import time
import tomllib

import requests

from conftest import sightline_bin, wait_until


def run(*args):
    return subprocess.run([sightline_bin(), *args], capture_output=True, text=True, timeout=60)


def test_version_and_example_config():
    v = run("version")
    assert v.returncode == 0 and v.stdout.startswith("sightline "), v
    ex = run("config", "--example")
    assert ex.returncode == 0
    cfg = tomllib.loads(ex.stdout)
    assert cfg["listen"]["http"] == "127.0.0.1:7800"
    assert cfg["storage"]["wal"]["fsync"] == "always"
    assert cfg["data_dir"] == "./data"


def test_unknown_config_key_is_named(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text("[storage]\nretention_dayz = 3\n")
    r = run("serve", "--config", str(p), "--data-dir", str(tmp_path / "d"))
    assert r.returncode != 0
    assert "retention_dayz" in r.stderr, r.stderr


def test_bad_listen_value_is_named(tmp_path):
    r = run("serve", "--data-dir", str(tmp_path / "d"), "--http-listen", "nowhere")
    assert r.returncode != 0 and "--http-listen" in r.stderr, r.stderr


def test_probes_and_self_metrics(server):
    assert requests.get(server.http + "/healthz").status_code == 200
    assert requests.get(server.http + "/readyz").status_code == 200
    server.udp(b"selfm.x:1|c")
    requests.post(server.http + "/api/v2/series", json={"series": []})
    text = requests.get(server.http + "/metrics").text
    for name in ["sightline_statsd_lines_total", "sightline_wal_records_total",
                 "sightline_http_request_duration_seconds_bucket", "sightline_storage_points_written_total"]:
        assert name in text, name


def start_raw(tmp_path, name, args, env):
    """Starts the binary with exactly these args and env additions; returns (process, listeners dict)."""
    data = tmp_path / name
    full_env = dict(os.environ, SIGHTLINE_DATA_DIR=str(data), SIGHTLINE_OTLP_GRPC_LISTEN="off",
                    SIGHTLINE_OTLP_HTTP_LISTEN="off", SIGHTLINE_SYSLOG_LISTEN="off", **env)
    proc = subprocess.Popen([sightline_bin(), *args], env=full_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    listeners = wait_until(lambda: (data / "listeners.json").exists() and (data / "listeners.json").read_text(),
                           timeout=60, what="listeners.json")
    return proc, json.loads(listeners)


def test_env_vars_set_listeners_and_flags_beat_them(tmp_path):
    # No subcommand means `serve`; env vars alone configure it.
    proc, addrs = start_raw(tmp_path, "env", [], {"SIGHTLINE_HTTP_LISTEN": "127.0.0.1:0",
                                                   "SIGHTLINE_STATSD_LISTEN": "off"})
    try:
        assert set(addrs) == {"http"}, addrs
        assert requests.get(f"http://{addrs['http']}/readyz").status_code == 200
    finally:
        proc.terminate()
        proc.wait(30)
    proc, addrs = start_raw(tmp_path, "flag", ["serve", "--statsd-listen", "127.0.0.1:0"],
                            {"SIGHTLINE_HTTP_LISTEN": "127.0.0.1:0", "SIGHTLINE_STATSD_LISTEN": "off"})
    try:
        assert set(addrs) == {"http", "statsd"}, addrs
    finally:
        proc.terminate()
        proc.wait(30)


def test_keys_guard_writes_and_reads(make_server, tmp_path):
    cfg = tmp_path / "auth.toml"
    cfg.write_text('[auth]\napi_keys = ["api-1"]\napp_keys = ["app-1"]\n')
    s = make_server(extra_args=["--config", str(cfg)]).start()
    ts = int(time.time()) - 300
    body = {"series": [{"metric": "auth.x", "type": 3, "points": [{"timestamp": ts, "value": 1}]}]}
    url = s.http + "/api/v2/series"
    assert requests.post(url, json=body).status_code == 401
    assert requests.post(url, json=body, headers={"DD-API-KEY": "wrong"}).status_code == 403
    assert requests.post(url, json=body, headers={"DD-API-KEY": "api-1"}).status_code == 202
    q = {"from": ts - 60, "to": ts + 60, "query": "avg:auth.x{*}"}
    qurl = s.http + "/api/v1/query"
    assert requests.get(qurl, params=q).status_code == 401
    assert requests.get(qurl, params=q, headers={"DD-API-KEY": "api-1"}).status_code == 403
    r = requests.get(qurl, params=q, headers={"DD-API-KEY": "api-1", "DD-APPLICATION-KEY": "app-1"})
    assert r.status_code == 200 and r.json()["series"], r.text
    # Probes and self-metrics stay open.
    assert requests.get(s.http + "/readyz").status_code == 200
