"""Shared by the browser tests (test_ui*.py): the planted data (`plant`, loaded once per module by the `ui`
fixture through the clients users use, with XSS payloads), `browse` (runs tests/e2e/browser/run.mjs in Debian's
chromium) and `problems` (what went wrong in one visit)."""

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests
from datadog_api_client.v1.api.dashboards_api import DashboardsApi
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.dashboard import Dashboard
from datadog_api_client.v1.model.dashboard_layout_type import DashboardLayoutType
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_options import MonitorOptions
from datadog_api_client.v1.model.monitor_thresholds import MonitorThresholds
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.v1.model.note_widget_definition import NoteWidgetDefinition
from datadog_api_client.v1.model.note_widget_definition_type import NoteWidgetDefinitionType
from datadog_api_client.v1.model.widget import Widget
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_helpers as oh
from conftest import Server, api_clients, wait_until
from helpers import search

HERE = Path(__file__).resolve().parent
RUN_MJS = HERE / "browser" / "run.mjs"
SCREENSHOTS = Path(os.environ.get("SIGHTLINE_SCREENSHOTS", HERE / "screenshots"))

# Where each payload is planted -> the payload. Each sets window.__xss (XSS_MARKER) if it ever runs.
XSS_MARKER = "__xss"
XSS = {
    "log message": '<img src=x onerror="window.__xss=1">',
    "log tag": "xss:<script>window.__xss=2</script>",
    "log attribute": "<svg onload=window.__xss=3>",
    "span name": "<img src=y onerror=window.__xss=4>",
    "monitor message": "<img src=z onerror=window.__xss=5>",
}

TESTIDS = ["log-row", "service-row", "span-row", "monitor-row"]

def fill(template, data):
    if isinstance(template, str):
        return template.format(**data)
    if isinstance(template, list):
        return [fill(t, data) for t in template]
    if isinstance(template, dict):
        return {k: fill(v, data) for k, v in template.items()}
    return template


def browse(base, visits):
    """Runs tests/e2e/browser/run.mjs on `visits`; its per-visit results (see run.mjs), in order."""
    if not (RUN_MJS.parent / "node_modules" / "playwright-core").is_dir():
        pytest.fail("playwright-core is not installed in tests/e2e/browser: run tests/run.sh (npm ci there)")
    spec = {"base": base, "testids": TESTIDS, "xssMarker": XSS_MARKER, "visits": visits}
    p = subprocess.run(["node", str(RUN_MJS)], input=json.dumps(spec), capture_output=True, text=True,
                       timeout=60 + 30 * len(visits))
    assert p.returncode == 0, f"run.mjs failed ({p.returncode}):\n{p.stderr}"
    results = json.loads(p.stdout)["results"]
    assert len(results) == len(visits)
    return results


def problems(r, allow=lambda failed: False):
    """What went wrong in one visit: errors, failed requests (except those `allow` accepts), XSS."""
    failed = [f for f in r["failedRequests"] if not allow(f)]
    allowed_urls = [f["url"] for f in r["failedRequests"] if allow(f)]
    console = [e for e in r["consoleErrors"] if not any(u in e for u in allowed_urls)]
    out = {
        "consoleErrors": console, "pageErrors": r["pageErrors"], "failedRequests": failed,
        "dialogs": r["dialogs"], "xss": r["xss"], "injected": r["injected"], "navigationError": r["navigationError"],
        "waitForError": r["waitForError"], "actionErrors": r["actionErrors"],
    }
    if r["status"] != 200:
        out["status"] = r["status"]
    return {k: v for k, v in out.items() if v}


class Planted(dict):
    """The data loaded into the server, by name (the ROUTES templates' fields)."""


def plant(server) -> Planted:
    run = uuid.uuid4().hex[:8]
    d = Planted(run=run, svc_a=f"ui-shop-{run}", svc_b=f"ui-stock-{run}", svc_trace=f"ui-api-{run}")
    d.update({"xss_" + k.replace(" ", "_"): v for k, v in XSS.items()})

    # Logs through the Datadog log intake, as the Agent or a Datadog logging library would send them.
    now_ms = int(time.time() * 1000)
    logs = [
        (d["svc_a"], "info", f"checkout ok order=1 {run}", {}, []),
        (d["svc_a"], "error", XSS["log message"], {"note": XSS["log attribute"]}, [XSS["log tag"]]),
        (d["svc_a"], "warn", f"slow payment 1200ms {run}", {"duration_ms": 1200}, []),
        (d["svc_b"], "info", f"stock sync done {run}", {}, []),
        (d["svc_b"], "error", f"stock sync failed {run}", {}, []),
    ]
    body = [{"message": m, "status": st, "service": svc, "hostname": "ui-host", "ddsource": "python",
             "ddtags": ",".join(["env:e2e", f"run:{run}", *tags]), "timestamp": now_ms - 1000 * (len(logs) - i),
             **attrs} for i, (svc, st, m, attrs, tags) in enumerate(logs)]
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text
    d["svc_a_logs"] = sum(1 for svc, *_ in logs if svc == d["svc_a"])

    # A metric through DogStatsD.
    api, dog = api_clients(server)
    for v in (40, 55, 70):
        dog.gauge("ui.checkout.latency", v, tags=[f"service:{d['svc_a']}", f"run:{run}"])
    dog.flush()
    dog.close_socket()
    d["metric_query"] = f"avg:ui.checkout.latency{{run:{run}}} by {{service}}"

    # A trace through the OpenTelemetry SDK: a server span, the payload-named span, a db span.
    with oh.tracer_provider(server.otlp_grpc, "grpc", service_name=d["svc_trace"]) as tp:
        tracer = tp.tracer("ui-e2e")
        with tracer.start_as_current_span("GET /checkout", kind=SpanKind.SERVER) as root:
            with tracer.start_as_current_span(XSS["span name"], kind=SpanKind.INTERNAL):
                time.sleep(0.002)
            with tracer.start_as_current_span("db.query", kind=SpanKind.CLIENT) as db:
                db.set_status(Status(StatusCode.ERROR, "deadlock"))
        d["trace_id"] = oh.span_ids(root)["trace_id"]
        tp.flush()

    # A monitor through the Datadog API client.
    d["monitor_name"] = f"UI checkout latency {run}"
    d["monitor_query"] = f"avg(last_5m):avg:ui.checkout.latency{{service:{d['svc_a']}}} > 100"
    with api:
        created = MonitorsApi(api).create_monitor(body=Monitor(
            name=d["monitor_name"], type=MonitorType.METRIC_ALERT, query=d["monitor_query"],
            message=f"Checkout is slow {XSS['monitor message']}", tags=["team:ui"],
            options=MonitorOptions(thresholds=MonitorThresholds(critical=100.0)),
        ))
        d["monitor_id"] = created.id
        # A dashboard through the Datadog API client.
        dash = DashboardsApi(api).create_dashboard(body=Dashboard(
            title=f"UI e2e {run}", layout_type=DashboardLayoutType.ORDERED,
            widgets=[Widget(definition=NoteWidgetDefinition(type=NoteWidgetDefinitionType.NOTE,
                                                            content=f"note {run}"))],
        ))
        d["dashboard_id"] = dash.id

    # Everything is queryable before the browser looks.
    wait_until(lambda: len(search(server, f"run:{run}")["data"]) == len(logs), timeout=10, what="the planted logs")
    wait_until(lambda: requests.get(f"{server.http}/api/ui/traces/{d['trace_id']}", timeout=10).status_code == 200,
               timeout=10, what="the planted trace")

    def service_listed():
        now = int(time.time())
        r = requests.get(server.http + "/api/ui/services", params={"from": now - 900, "to": now + 60}, timeout=10)
        return r.status_code == 200 and any(s["service"] == d["svc_trace"] for s in r.json()["services"])

    wait_until(service_listed, timeout=10, what="the trace's service in /api/ui/services")
    now = int(time.time())
    wait_until(lambda: server.series(f"avg:ui.checkout.latency{{run:{run}}}", now - 600, now + 60), timeout=10,
               what="the DogStatsD gauge")
    return d


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """One server for the module, loaded once (the browser visits only read)."""
    server = Server(tmp_path_factory.mktemp("ui") / "data").start()
    try:
        yield server, plant(server)
    finally:
        server.stop()


