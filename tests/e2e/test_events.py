"""Events and service checks end to end on the real binary (SPEC §2): `datadog-api-client` EventsApi.create_event /
list_events and ServiceChecksApi.submit_service_check over HTTP, the `datadog` DogStatsd client's `.event()` and
`.service_check()` over UDP, all stored as log records and found with `source:event` / `source:service_check` by
`POST /api/v2/logs/events/search`; and malformed bodies answered 400 naming the problem."""

import time
import uuid

import requests
from datadog.dogstatsd.base import DogStatsd
from datadog_api_client.v1.api.events_api import EventsApi
from datadog_api_client.v1.api.service_checks_api import ServiceChecksApi
from datadog_api_client.v1.model.event_alert_type import EventAlertType
from datadog_api_client.v1.model.event_create_request import EventCreateRequest
from datadog_api_client.v1.model.event_priority import EventPriority
from datadog_api_client.v1.model.service_check import ServiceCheck
from datadog_api_client.v1.model.service_check_status import ServiceCheckStatus
from datadog_api_client.v1.model.service_checks import ServiceChecks

from conftest import wait_until
from helpers import messages, search


def test_create_event_then_list_and_search(server, api):
    tag = uuid.uuid4().hex[:12]
    now = int(time.time())
    events = EventsApi(api)
    created = events.create_event(EventCreateRequest(
        title=f"deploy {tag}", text="version 1.2.3 rolled out\nto every host", tags=["env:e2e", f"run:{tag}"],
        alert_type=EventAlertType.SUCCESS, priority=EventPriority.LOW, host="web-1",
        aggregation_key=f"deploy-{tag}", source_type_name="jenkins", date_happened=now,
    ))
    assert created.status == "ok"
    ev = created.event
    assert ev.title == f"deploy {tag}"
    assert ev.text == "version 1.2.3 rolled out\nto every host"
    assert ev.date_happened == now
    assert ev.id > 0 and ev.id_str == str(ev.id)
    assert sorted(ev.tags) == sorted(["env:e2e", f"run:{tag}"])

    # Acknowledged means stored: searchable within 2 s, as a log with source:event.
    found = wait_until(lambda: search(server, f"source:event @title:\"deploy {tag}\"")["data"], timeout=5,
                       what="the created event in log search")
    a = found[0]["attributes"]
    assert a["message"] == f"deploy {tag}\nversion 1.2.3 rolled out\nto every host"
    assert a["status"] == "ok"
    assert a["host"] == "web-1"
    assert f"run:{tag}" in a["tags"]
    assert a["attributes"]["source"] == "event"
    assert a["attributes"]["priority"] == "low"
    assert a["attributes"]["aggregation_key"] == f"deploy-{tag}"
    assert a["attributes"]["event_id"] == ev.id
    assert messages(server, f"source:service_check run:{tag}") == []

    listed = events.list_events(start=now - 60, end=now + 60, tags=f"run:{tag}")
    assert listed.status == "ok"
    assert [e.id for e in listed.events] == [ev.id]
    got = listed.events[0]
    assert got.title == f"deploy {tag}"
    assert got.text == "version 1.2.3 rolled out\nto every host"
    assert got.priority == EventPriority.LOW
    assert got.alert_type == EventAlertType.SUCCESS
    assert got.host == "web-1"
    assert got.date_happened == now
    assert events.list_events(start=now - 60, end=now + 60, tags=f"run:{tag}",
                              priority=EventPriority.NORMAL).events == []
    assert [e.id for e in events.list_events(start=now - 60, end=now + 60, sources="chef,jenkins",
                                             tags=f"run:{tag}").events] == [ev.id]
    assert events.list_events(start=now - 3600, end=now - 120, tags=f"run:{tag}").events == []


def test_submit_service_check(server, api):
    tag = uuid.uuid4().hex[:12]
    resp = ServiceChecksApi(api).submit_service_check(ServiceChecks([
        ServiceCheck(check=f"app.ok.{tag}", host_name="app-1", status=ServiceCheckStatus.OK,
                     tags=["env:e2e", f"run:{tag}"]),
        ServiceCheck(check=f"db.up.{tag}", host_name="db-1", status=ServiceCheckStatus.CRITICAL,
                     message=f"connection refused {tag}", tags=[f"run:{tag}"], timestamp=int(time.time())),
    ]))
    assert resp.status == "ok"
    found = wait_until(lambda: search(server, f"source:service_check run:{tag}")["data"], timeout=5,
                       what="the service checks in log search")
    by_check = {d["attributes"]["attributes"]["check"]: d["attributes"] for d in found}
    assert set(by_check) == {f"app.ok.{tag}", f"db.up.{tag}"}
    ok, crit = by_check[f"app.ok.{tag}"], by_check[f"db.up.{tag}"]
    assert ok["message"] == f"app.ok.{tag}: OK"
    assert ok["status"] == "ok" and ok["host"] == "app-1"
    assert ok["attributes"]["status_code"] == 0
    assert crit["message"] == f"connection refused {tag}"
    assert crit["status"] == "critical" and crit["host"] == "db-1"
    assert messages(server, f"source:service_check status:critical run:{tag}") == [f"connection refused {tag}"]
    # Service checks are not events.
    assert messages(server, f"source:event run:{tag}") == []


def test_dogstatsd_event_and_service_check(server, dog, api):
    tag = uuid.uuid4().hex[:12]
    started = time.time()
    dog.event(f"disk full {tag}", "sda1 is at 99%\nclean up", alert_type="error", priority="normal",
              tags=["env:e2e", f"run:{tag}"], hostname="web-2", aggregation_key="disk")
    dog.service_check(f"nginx.up.{tag}", DogStatsd.WARNING, tags=[f"run:{tag}"], hostname="web-2",
                      message=f"slow upstream {tag}")
    dog.flush()

    events = wait_until(lambda: search(server, f"source:event run:{tag}")["data"], timeout=5,
                        what="the DogStatsD event in log search")
    # Written on the receiver's next flush tick (1 s), searchable within the store's commit interval.
    assert time.time() - started < 3.5
    a = events[0]["attributes"]
    assert a["message"] == f"disk full {tag}\nsda1 is at 99%\nclean up"
    assert a["status"] == "error"
    assert a["host"] == "web-2"
    assert a["attributes"]["title"] == f"disk full {tag}"
    assert a["attributes"]["alert_type"] == "error"

    checks = wait_until(lambda: search(server, f"source:service_check run:{tag}")["data"], timeout=5,
                        what="the DogStatsD service check in log search")
    c = checks[0]["attributes"]
    assert c["message"] == f"slow upstream {tag}"
    assert c["status"] == "warning"
    assert c["host"] == "web-2"
    assert c["attributes"]["check"] == f"nginx.up.{tag}"
    assert c["attributes"]["status_code"] == 1

    # DogStatsD events are listed by the events API too.
    now = int(time.time())
    listed = EventsApi(api).list_events(start=now - 120, end=now + 60, tags=f"run:{tag}")
    assert [e.title for e in listed.events] == [f"disk full {tag}"]
    assert listed.events[0].alert_type == EventAlertType.ERROR
    assert server.self_metric("sightline_statsd_events_total", type="event") >= 1
    assert server.self_metric("sightline_statsd_events_dropped_total") == 0


def test_bad_input(server):
    def post(path, data):
        return requests.post(server.http + path, data=data, headers={"Content-Type": "application/json"},
                             timeout=10)

    r = post("/api/v1/events", '{"title": "x",}')
    assert r.status_code == 400
    assert r.json()["errors"][0].startswith("malformed json: ")

    r = post("/api/v1/events", '{"text": "no title"}')
    assert r.status_code == 400
    assert r.json()["errors"] == ['event has no "title"']

    r = post("/api/v1/events", '{"title": "t", "priority": "urgent"}')
    assert r.status_code == 400
    assert "priority" in r.json()["errors"][0]

    r = post("/api/v1/check_run", '[{"check": "x", "host_name": "h", "status": 7}]')
    assert r.status_code == 400
    assert '"status" is 7' in r.json()["errors"][0]

    r = requests.get(server.http + "/api/v1/events", params={"end": int(time.time())}, timeout=10)
    assert r.status_code == 400
    assert r.json()["errors"] == ['missing query parameter "start" (unix seconds)']
