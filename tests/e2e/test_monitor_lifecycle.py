"""Monitor lifecycles end to end on the real binary (SPEC §7, issue #5), each with a real local webhook receiver:
warn → alert → recovery transitions and No Data after a series stops (`no_data_timeframe` counted from its last
point); a receiver answering 500 gets retries, every attempt visible through the API; a downtime that expires while
its group still alerts sends exactly one notification; a `kill -9` during a delivery loses nothing (the outbox is
re-sent after the restart); a `trace-analytics alert` fires on error spans sent by the OpenTelemetry SDK, and a
metric alert on the RED error rate (errors / hits) fires alongside it."""

import time
import uuid
from datetime import datetime, timedelta, timezone

import requests
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.api.webhooks_integration_api import WebhooksIntegrationApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_options import MonitorOptions
from datadog_api_client.v1.model.monitor_thresholds import MonitorThresholds
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.v1.model.webhooks_integration import WebhooksIntegration
from datadog_api_client.v2.api.downtimes_api import DowntimesApi
from datadog_api_client.v2.model.downtime_create_request import DowntimeCreateRequest
from datadog_api_client.v2.model.downtime_create_request_attributes import DowntimeCreateRequestAttributes
from datadog_api_client.v2.model.downtime_create_request_data import DowntimeCreateRequestData
from datadog_api_client.v2.model.downtime_monitor_identifier_id import DowntimeMonitorIdentifierId
from datadog_api_client.v2.model.downtime_resource_type import DowntimeResourceType
from datadog_api_client.v2.model.downtime_schedule_one_time_create_update_request import (
    DowntimeScheduleOneTimeCreateUpdateRequest,
)
from opentelemetry.trace import SpanKind, Status, StatusCode

import otel_helpers as oh
from conftest import api_clients, wait_until

# What each test's webhook sends: enough to tell the notifications apart.
PAYLOAD = '{"transition": "$ALERT_TRANSITION", "scope": "$ALERT_SCOPE", "monitor": "$ALERT_ID"}'
ARGS = ["--alerts-eval-interval", "1s", "--alerts-webhook-allow", "127.0.0.1/32"]


def add_webhook(api, name, receiver):
    WebhooksIntegrationApi(api).create_webhooks_integration(
        body=WebhooksIntegration(name=name, url=f"{receiver.url}/{name}", payload=PAYLOAD)
    )


def raw_state(server, mid):
    r = requests.get(f"{server.http}/api/v1/monitor/{mid}", params={"group_states": "all"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["state"]


def status(server, mid, group):
    g = raw_state(server, mid)["groups"].get(group)
    return g and g["status"]


def changes(server, mid):
    return [(h["group"], h["from"], h["to"]) for h in raw_state(server, mid)["history"] if h["from"] != h["to"]]


def transitions(receiver, name, mid):
    return [(b["transition"], b["scope"]) for b in receiver.bodies(f"/hook/{name}") if b["monitor"] == str(mid)]


def gauge(dog, name, value, host):
    dog.gauge(name, value, tags=[f"host:{host}"])
    dog.flush()


def temp_monitor(make_server, receiver, hook, message):
    """A server, its clients, the webhook `hook` to `receiver` and a monitor alerting while every e2e.temp value
    of a host in the last minute is over 80; returns (server, api, dog, monitor id)."""
    server = make_server(extra_args=ARGS).start()
    api, dog = api_clients(server)
    add_webhook(api, hook, receiver)
    mid = MonitorsApi(api).create_monitor(body=Monitor(
        name="temp", type=MonitorType.METRIC_ALERT, query="min(last_1m):min:e2e.temp{*} by {host} > 80",
        message=message,
    )).id
    return server, api, dog, mid


def test_warn_alert_recovery_and_no_data(make_server, webhook_receiver):
    server = make_server(extra_args=ARGS).start()
    api, dog = api_clients(server)
    add_webhook(api, "ops", webhook_receiver)
    monitors = MonitorsApi(api)
    load = monitors.create_monitor(body=Monitor(
        name="load high", type=MonitorType.METRIC_ALERT, query="max(last_1m):max:e2e.load{*} by {host} > 90",
        message="load {{value}} on {{host.name}} @webhook-ops",
        options=MonitorOptions(thresholds=MonitorThresholds(critical=90.0, warning=70.0)),
    )).id
    beat = monitors.create_monitor(body=Monitor(
        name="heartbeat", type=MonitorType.METRIC_ALERT, query="avg(last_1m):avg:e2e.beat{*} by {host} > 100",
        message="{{host.name}} went silent @webhook-ops",
        options=MonitorOptions(notify_no_data=True, no_data_timeframe=1),
    )).id
    # One heartbeat, then silence: No Data once the last point is older than no_data_timeframe (1 minute).
    gauge(dog, "e2e.beat", 1, "z")
    silent_since = time.time()

    def reaches(value, want, **kw):
        def step():
            gauge(dog, "e2e.load", value, "a")
            return status(server, load, "host:a") == want
        wait_until(step, interval=0.5, what=f"host:a {want} at {value}", **kw)

    reaches(80, "Warn", timeout=20)
    reaches(95, "Alert", timeout=20)
    # max(last_1m): the 95s must leave the window before the group recovers.
    reaches(10, "OK", timeout=100)
    assert changes(server, load) == [("host:a", "OK", "Warn"), ("host:a", "Warn", "Alert"), ("host:a", "Alert", "OK")]
    wait_until(lambda: len(transitions(webhook_receiver, "ops", load)) == 3, timeout=10, what="3 notifications")
    assert transitions(webhook_receiver, "ops", load) == [
        ("Warn", "host:a"), ("Triggered", "host:a"), ("Recovered", "host:a")]

    wait_until(lambda: status(server, beat, "host:z") == "No Data", timeout=100, interval=1, what="host:z No Data")
    entry = [h for h in raw_state(server, beat)["history"] if h["to"] == "No Data"]
    assert [(h["group"], h["from"]) for h in entry] == [("host:z", "OK")]
    # Not before the timeframe after the last point, and not much later (a 10 s bucket, a 10 s window step).
    waited = entry[0]["ts"] - silent_since
    assert 59 <= waited <= 100, (waited, entry)
    wait_until(lambda: transitions(webhook_receiver, "ops", beat) == [("No Data", "host:z")], timeout=10,
               what="the No Data notification")
    dog.close_socket()
    api.close()


def test_a_failing_receiver_gets_retries(make_server, webhook_receiver):
    webhook_receiver.answers = [500, 503]
    server, api, dog, mid = temp_monitor(make_server, webhook_receiver, "flaky", "hot @webhook-flaky")

    def alerting():
        gauge(dog, "e2e.temp", 95, "a")
        return status(server, mid, "host:a") == "Alert"

    wait_until(alerting, timeout=20, interval=0.5, what="host:a alerting")
    # Retried after 0.5 s and 1 s: the third attempt is answered 200.
    wait_until(lambda: len(webhook_receiver.bodies("/hook/flaky")) == 3, timeout=15, what="3 attempts")
    bodies = webhook_receiver.bodies("/hook/flaky")
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[0]["transition"] == "Triggered"

    def recorded():
        n = raw_state(server, mid)["notifications"]
        return n if len(n) == 3 else None

    attempts = wait_until(recorded, timeout=10, what="3 recorded attempts")
    assert [(a["attempt"], a["status"], a["ok"]) for a in attempts] == [(1, 500, False), (2, 503, False), (3, 200, True)]
    assert all(a["webhook"] == "flaky" and a["group"] == "host:a" for a in attempts)
    time.sleep(2)
    assert len(webhook_receiver.bodies("/hook/flaky")) == 3, "a delivered notification is not sent again"
    dog.close_socket()
    api.close()


def test_downtime_expiring_while_alerting_notifies_once(make_server, webhook_receiver):
    server, api, dog, mid = temp_monitor(make_server, webhook_receiver, "ops", "hot {{host.name}} @webhook-ops")
    end = datetime.now(timezone.utc).replace(microsecond=0) + timedelta(seconds=12)
    DowntimesApi(api).create_downtime(body=DowntimeCreateRequest(data=DowntimeCreateRequestData(
        type=DowntimeResourceType.DOWNTIME,
        attributes=DowntimeCreateRequestAttributes(
            scope="host:a", monitor_identifier=DowntimeMonitorIdentifierId(monitor_id=mid),
            schedule=DowntimeScheduleOneTimeCreateUpdateRequest(end=end),
        ),
    )))

    def both_alerting():
        gauge(dog, "e2e.temp", 95, "a")
        gauge(dog, "e2e.temp", 99, "b")
        return status(server, mid, "host:a") == "Alert" and status(server, mid, "host:b") == "Alert"

    wait_until(both_alerting, timeout=20, interval=0.5, what="hosts a and b alerting")
    assert time.time() < end.timestamp(), "the downtime must still be active here"
    # Host b is outside the downtime's scope: notified at once; host a is muted.
    wait_until(lambda: transitions(webhook_receiver, "ops", mid) == [("Triggered", "host:b")], timeout=10,
               what="host:b notified")
    muted = [h for h in raw_state(server, mid)["history"] if h["group"] == "host:a"]
    assert [(h["to"], h.get("muted")) for h in muted] == [("Alert", True)]

    def notified_after_end():
        gauge(dog, "e2e.temp", 95, "a")
        return [t for t in transitions(webhook_receiver, "ops", mid) if t[1] == "host:a"]

    got = wait_until(notified_after_end, timeout=30, interval=0.5, what="host:a notified when the downtime ends")
    assert got == [("Triggered", "host:a")]
    assert time.time() >= end.timestamp()
    ended = [h for h in raw_state(server, mid)["history"] if h.get("downtime_ended")]
    assert [(h["group"], h["from"], h["to"]) for h in ended] == [("host:a", "Alert", "Alert")]
    for _ in range(6):  # still alerting: nothing more
        gauge(dog, "e2e.temp", 95, "a")
        time.sleep(0.5)
    assert sorted(transitions(webhook_receiver, "ops", mid)) == [("Triggered", "host:a"), ("Triggered", "host:b")]
    dog.close_socket()
    api.close()


def test_kill_during_delivery_resends_after_restart(make_server, webhook_receiver):
    # The first request is never answered: the process is killed while delivering it.
    webhook_receiver.answers = ["hang"]
    server, api, dog, mid = temp_monitor(make_server, webhook_receiver, "ops", "hot @webhook-ops")

    def delivering():
        gauge(dog, "e2e.temp", 95, "a")
        return len(webhook_receiver.bodies("/hook/ops")) == 1

    wait_until(delivering, timeout=20, interval=0.5, what="the first delivery under way")
    server.kill9()
    dog.close_socket()
    api.close()
    server.start()
    # Re-sent from the outbox at start, answered 200 this time.
    wait_until(lambda: len(webhook_receiver.bodies("/hook/ops")) == 2, timeout=15, what="the notification re-sent")
    first, second = webhook_receiver.bodies("/hook/ops")
    assert first == second and first["transition"] == "Triggered", (first, second)
    wait_until(lambda: [a["ok"] for a in raw_state(server, mid)["notifications"]] == [True], timeout=10,
               what="the delivery recorded")
    api, dog = api_clients(server)
    for _ in range(6):  # more cycles, still alerting: no third request, no second [Triggered]
        gauge(dog, "e2e.temp", 95, "a")
        time.sleep(0.5)
    assert len(webhook_receiver.bodies("/hook/ops")) == 2
    assert changes(server, mid) == [("host:a", "OK", "Alert")]
    dog.close_socket()
    api.close()


def test_trace_analytics_and_error_rate_monitors_fire(make_server, webhook_receiver):
    server = make_server(extra_args=ARGS).start()
    api, _ = api_clients(server)
    add_webhook(api, "ops", webhook_receiver)
    service = f"ta-{uuid.uuid4().hex[:8]}"
    monitors = MonitorsApi(api)
    errors = monitors.create_monitor(body=Monitor(
        name="checkout errors", type=MonitorType.TRACE_ANALYTICS_ALERT,
        query=f'trace-analytics("service:{service} status:error").rollup("count").by("resource_name").last("5m") > 5',
        message="{{resource_name.name}} fails @webhook-ops",
    )).id
    rate = monitors.create_monitor(body=Monitor(
        name="checkout error rate", type=MonitorType.METRIC_ALERT,
        query=f"sum(last_5m):sum:trace.checkout.errors{{service:{service}}}.as_count() / "
              f"sum:trace.checkout.hits{{service:{service}}}.as_count() > 0.25",
        message="error rate {{value}} @webhook-ops",
    )).id
    # 40 requests: 15 of 20 on /pay fail, none of 20 on /cart.
    with oh.tracer_provider(server.otlp_http, "http", service_name=service) as tp:
        tracer = tp.tracer("ta")
        for i in range(40):
            route = "/pay" if i % 2 else "/cart"
            s = tracer.start_span("checkout", kind=SpanKind.SERVER,
                                  attributes={"http.request.method": "POST", "http.route": route})
            if route == "/pay" and i % 8 != 1:
                s.set_status(Status(StatusCode.ERROR))
            s.end()
        tp.flush()

    def fired():
        e = raw_state(server, errors)["groups"]
        r = raw_state(server, rate)["groups"]
        summary = ({g: v["status"] for g, v in e.items()}, {g: v["status"] for g, v in r.items()})
        return summary if summary == ({"resource_name:POST /pay": "Alert"}, {"*": "Alert"}) else None

    wait_until(fired, timeout=20, interval=0.5, what="both monitors alerting")
    assert raw_state(server, errors)["groups"]["resource_name:POST /pay"]["last_value"] == 15
    assert abs(raw_state(server, rate)["groups"]["*"]["last_value"] - 15 / 40) < 1e-9
    wait_until(lambda: transitions(webhook_receiver, "ops", errors) == [("Triggered", "resource_name:POST /pay")],
               timeout=10, what="the trace-analytics notification")
    wait_until(lambda: transitions(webhook_receiver, "ops", rate) == [("Triggered", "")], timeout=10,
               what="the error-rate notification")
    api.close()
