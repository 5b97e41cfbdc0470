"""The web app against a server with API and application keys (SPEC §9, issue #6), and the time picker, in a real
browser: the first refused request brings up the key form; with the keys entered the log explorer lists the
planted logs and its live tail (a stream that must carry the keys, which EventSource cannot) shows logs sent
while the page is open; wrong keys bring the form back with the server's message. The time picker writes an
absolute range into the URL and its "Live" switch reloads a view's data as time passes."""

import threading
import time
import uuid
from urllib.parse import parse_qs, urlparse

import requests

from conftest import wait_until
from ui_helpers import SCREENSHOTS, browse, problems

API, APP = "api-ui-1", "app-ui-1"
KEYS = {"DD-API-KEY": API, "DD-APPLICATION-KEY": APP}


def send_log(server, run, message, headers=KEYS):
    body = [{"message": message, "status": "info", "service": f"auth-{run}", "hostname": "auth-host",
             "ddtags": f"run:{run}", "timestamp": int(time.time() * 1000)}]
    r = requests.post(server.http + "/api/v2/logs", json=body, headers=headers, timeout=10)
    assert r.status_code == 202, r.text


def refused(f):
    """The requests a keyed server refuses before the keys are entered (401/403 on the API)."""
    return f.get("status") in (401, 403) and "/api/" in f["url"]


def keyed_server(make_server, tmp_path):
    cfg = tmp_path / "auth.toml"
    cfg.write_text(f'[auth]\napi_keys = ["{API}"]\napp_keys = ["{APP}"]\n')
    return make_server(extra_args=["--config", str(cfg)]).start()


def test_keys_form_then_logs_and_live_tail(make_server, tmp_path):
    server = keyed_server(make_server, tmp_path)
    run = uuid.uuid4().hex[:8]
    send_log(server, run, f"stored-{run}")
    wait_until(lambda: requests.post(server.http + "/api/v2/logs/events/search", headers=KEYS, timeout=10,
                                     json={"filter": {"query": f"run:{run}", "from": "now-15m", "to": "now+1m"}})
               .json()["data"], timeout=15, what="the planted log")

    # Logs for the stream only: sent once the page's tail stream is open (the server counts it) and its two
    # catch-up searches (at once and 2.5 s later) are over, so only the stream can bring them.
    def tail_opened():
        return server.self_metric("sightline_http_request_duration_seconds_count",
                                  route="/api/ui/logs/tail", status="200") > 0

    late = []

    def late_sender():
        try:
            wait_until(tail_opened, timeout=40, what="the tail stream")
        except AssertionError:
            return
        time.sleep(3.5)
        for k in range(4):
            send_log(server, run, f"late-{run}-{k}")
            late.append(k)
            time.sleep(0.5)

    sender = threading.Thread(target=late_sender, daemon=True)
    sender.start()
    path = f"/logs?query=run:{run}&from=now-15m&to=now"
    try:
        [ok] = browse(server.http, [{
            "path": path, "waitFor": "[data-testid=key-form]",
            "screenshot": str(SCREENSHOTS / "logs-with-keys.png"),
            "actions": [
                {"fill": "[data-testid=key-api]", "text": API},
                {"fill": "[data-testid=key-app]", "text": APP},
                {"click": "[data-testid=key-save]"},
                {"waitForRows": "log-row", "allContain": run},
                {"waitForText": f"stored-{run}"},
                {"click": "[data-testid=logs-live]"},
                {"waitFor": "[data-testid=logs-live][aria-pressed=true]"},
                {"waitForText": f"late-{run}-0"},
                {"waitForText": f"late-{run}-3"},
            ],
        }])
    finally:
        sender.join(60)
    assert problems(ok, allow=refused) == {}, problems(ok, allow=refused)
    # Before the keys: the API refused (401), and the form said why; after: no refusal at all.
    assert any(f.get("status") == 401 for f in ok["failedRequests"]), ok["failedRequests"]
    assert f"stored-{run}" in ok["text"] and "Forget keys" in ok["text"]
    assert late == [0, 1, 2, 3]
    assert [r for r in ok["requests"] if "/api/ui/logs/tail" in r["url"]], "no tail request"

    # Wrong keys: the form again, with the server's message naming the problem.
    [bad] = browse(server.http, [{
        "path": path, "waitFor": "[data-testid=key-form]",
        "actions": [
            {"fill": "[data-testid=key-api]", "text": API},
            {"fill": "[data-testid=key-app]", "text": "not-a-key"},
            {"click": "[data-testid=key-save]"},
            {"waitFor": "[data-testid=key-form]"},
            {"waitForText": "application key"},
        ],
    }])
    assert problems(bad, allow=refused) == {}, problems(bad, allow=refused)
    assert any(f.get("status") == 403 for f in bad["failedRequests"]), bad["failedRequests"]
    assert "log-row" not in bad["counts"] or bad["counts"]["log-row"] == 0


def test_time_picker_absolute_and_live(make_server):
    server = make_server().start()
    run = uuid.uuid4().hex[:8]
    send_log(server, run, f"tp-{run}", headers={})
    # Absolute: "Custom range…", two date-time fields, Apply: the URL carries unix milliseconds.
    [absolute] = browse(server.http, [{
        "path": f"/logs?query=run:{run}&from=now-1h&to=now", "waitFor": "[data-testid=time-range]",
        "actions": [
            {"select": "[data-testid=time-range]", "value": "custom"},
            {"fill": "[data-testid=time-from]", "text": "2026-01-02T03:04"},
            {"fill": "[data-testid=time-to]", "text": "2026-01-02T05:04"},
            {"click": "[data-testid=time-apply]"},
            {"waitForURL": "from=17"},
            {"waitFor": "[data-testid=time-absolute]", "state": "detached"},
        ],
    }])
    assert problems(absolute) == {}, problems(absolute)
    q = parse_qs(urlparse(absolute["url"]).query)
    f, t = int(q["from"][0]), int(q["to"][0])
    assert t - f == 2 * 3600 * 1000, (f, t)  # two hours apart, whatever the browser's time zone
    assert q["query"] == [f"run:{run}"]

    # Live: the metrics explorer asks for its series again every 10 s while "Live" is on.
    [live] = browse(server.http, [{
        "path": "/metrics?query=avg:nothing.here{*}&from=now-15m&to=now", "waitFor": "[data-testid=time-live]",
        "actions": [
            {"click": "[data-testid=time-live]"},
            {"waitForURL": "live=1"},
            {"sleep": 21_000},
        ],
    }])
    assert problems(live) == {}, problems(live)
    queries = [r["url"] for r in live["requests"] if "/api/v1/query" in r["url"]]
    assert len(queries) >= 3, queries
