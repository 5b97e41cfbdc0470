"""Fixtures for Sightline's end-to-end tests: start the real `sightline` binary on ephemeral ports with a
temporary on-disk data dir, talk to it with the clients users use, and stop what was started."""

import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from datadog.dogstatsd.base import DogStatsd
from datadog_api_client import ApiClient, Configuration

REPO = Path(__file__).resolve().parents[2]


def sightline_bin() -> str:
    path = os.environ.get("SIGHTLINE_BIN")
    if path:
        return path
    target = os.environ.get("CARGO_TARGET_DIR", str(REPO / "target"))
    return str(Path(target) / "debug" / "sightline")


class Server:
    """One `sightline serve` process on 127.0.0.1 port 0 listeners, with its data dir."""

    def __init__(self, data_dir: Path, extra_args=(), env=None):
        self.data_dir = Path(data_dir)
        self.extra_args = list(extra_args)
        self.env = dict(os.environ, **(env or {}))
        self.env.setdefault("SIGHTLINE_LOG", "info")
        self.proc = None
        self.log_path = self.data_dir.parent / (self.data_dir.name + ".log")

    def start(self, timeout=60.0):
        self.data_dir.mkdir(parents=True, exist_ok=True)
        listeners = self.data_dir / "listeners.json"
        if listeners.exists():
            listeners.unlink()
        args = [
            sightline_bin(), "serve",
            "--data-dir", str(self.data_dir),
            "--http-listen", "127.0.0.1:0",
            "--statsd-listen", "127.0.0.1:0",
            "--otlp-grpc-listen", "127.0.0.1:0",
            "--otlp-http-listen", "127.0.0.1:0",
            "--syslog-listen", "127.0.0.1:0",
            *self.extra_args,
        ]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sightline exited with {self.proc.returncode}:\n{self.read_log()}")
            if listeners.exists():
                try:
                    self.addrs = json.loads(listeners.read_text())
                    break
                except json.JSONDecodeError:
                    pass
            time.sleep(0.05)
        else:
            raise RuntimeError(f"sightline did not become ready in {timeout}s:\n{self.read_log()}")
        self.http = "http://" + self.addrs["http"]
        host, port = self.addrs["statsd"].rsplit(":", 1)
        self.statsd_port = int(port)
        self.syslog_port = int(self.addrs["syslog"].rsplit(":", 1)[1]) if "syslog" in self.addrs else None
        # OTLP: the HTTP base URL and the gRPC host:port (None when the listener is off).
        self.otlp_http = "http://" + self.addrs["otlp_http"] if "otlp_http" in self.addrs else None
        self.otlp_grpc = self.addrs.get("otlp_grpc")
        r = requests.get(self.http + "/readyz", timeout=5)
        assert r.status_code == 200, r.text
        return self

    def read_log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-8000:]
        except OSError:
            return ""

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self.proc = None

    def restart(self):
        self.stop()
        return self.start()

    # --- helpers -------------------------------------------------------------------------------------------

    def query(self, q: str, start: int, end: int, **headers):
        r = requests.get(self.http + "/api/v1/query", params={"from": start, "to": end, "query": q},
                         headers=headers, timeout=30)
        return r

    def series(self, q: str, start: int, end: int):
        r = self.query(q, start, end)
        assert r.status_code == 200, f"{q}: {r.status_code} {r.text}"
        body = r.json()
        assert body["status"] == "ok", body
        return body["series"]

    def self_metric(self, name: str, **labels) -> float:
        """Sum of a counter/gauge from /metrics whose labels include `labels`."""
        text = requests.get(self.http + "/metrics", timeout=10).text
        total = 0.0
        for line in text.splitlines():
            if line.startswith("#") or not line.startswith(name):
                continue
            head, _, value = line.rpartition(" ")
            metric, _, lab = head.partition("{")
            if metric != name:
                continue
            if all(f'{k}="{v}"' in lab for k, v in labels.items()):
                total += float(value)
        return total

    def udp(self, payload: bytes):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(payload, ("127.0.0.1", self.statsd_port))
        s.close()


def wait_until(fn, timeout=10.0, interval=0.2, what="condition"):
    """Polls `fn` until it returns a truthy value; returns it, or fails naming `what` and the last value."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value: {last!r}")


@pytest.fixture
def server(tmp_path):
    s = Server(tmp_path / "data").start()
    yield s
    s.stop()


def api_client(server) -> ApiClient:
    """A `datadog-api-client` ApiClient pointed at `server` (keys are not checked without `--api-keys`)."""
    cfg = Configuration(host=server.http)
    cfg.api_key["apiKeyAuth"] = "unused-without-keys"
    cfg.api_key["appKeyAuth"] = "unused-without-keys"
    return ApiClient(cfg)


def api_clients(server):
    """An ApiClient and a DogStatsd client for `server` (again after a restart: its ports change)."""
    return api_client(server), DogStatsd(host="127.0.0.1", port=server.statsd_port, disable_telemetry=True)


@pytest.fixture
def api(server):
    with api_client(server) as client:
        yield client


@pytest.fixture
def dog(server):
    """The `datadog` DogStatsd client sending to `server`'s DogStatsD port; flushed and closed at the end."""
    d = DogStatsd(host="127.0.0.1", port=server.statsd_port, disable_telemetry=True)
    yield d
    d.flush()
    d.close_socket()


@pytest.fixture
def make_server(tmp_path):
    """Factory for servers with extra flags or env; every one is stopped at the end."""
    started = []

    def make(name="data", extra_args=(), env=None):
        s = Server(tmp_path / name, extra_args=extra_args, env=env)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


class WebhookReceiver:
    """A local HTTP server on 127.0.0.1 recording every request posted to it (`requests`: dicts with `path`,
    `body` (parsed JSON, or the text when not JSON) and lower-cased `headers`). `answers` holds the answers to
    the first requests, in turn: an HTTP status, or "hang" (no answer until the receiver stops); later
    requests get 200. With `tls=(cert_file, key_file)` it speaks HTTPS."""

    def __init__(self, tls=None):
        self.requests = []
        self.answers = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(n).decode()
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw
                with receiver._lock:
                    receiver.requests.append(
                        {"path": self.path, "body": body, "headers": {k.lower(): v for k, v in self.headers.items()}}
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else 200
                if answer == "hang":
                    receiver._stop.wait(60)
                    return
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        scheme = "http"
        if tls:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self._httpd.socket = ctx.wrap_socket(self._httpd.socket, server_side=True)
            scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        self.url = f"{scheme}://127.0.0.1:{self._httpd.server_address[1]}/hook"

    def bodies(self, path=None):
        """The bodies received so far (at `path` only, when given)."""
        with self._lock:
            return [r["body"] for r in self.requests if path is None or r["path"] == path]

    def stop(self):
        self._stop.set()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture
def webhook_receiver():
    r = WebhookReceiver()
    yield r
    r.stop()
