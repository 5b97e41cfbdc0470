"""The monitor evaluator end to end on the real binary (SPEC §7, issue #5): with `--alerts-eval-interval 1s`, a
`metric alert` multi-alert `by {host}` fed DogStatsD gauges fires only for the host over the threshold (as seen by
`MonitorsApi.get_monitor(id, group_states="all")`), records a `[Triggered]` event searchable as `source:event`,
then recovers once the host's values drop, with a `[Recovered]` event and the transitions in `state.history`; and
an alert survives a restart (persisted states) without a second `[Triggered]` event; a `log alert` counting errors
per host fires for the host with too many.

The monitor uses `min(last_1m)`: the group alerts while every value of the last minute is over 80 and recovers as
soon as one value drops below, so the test does not wait a whole window for the high values to leave it."""

import time

import pytest
import requests
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_type import MonitorType

from conftest import api_clients, wait_until
from helpers import search

QUERY = "min(last_1m):max:e2e.cpu{*} by {host} > 80"


def states(monitors, mid):
    """(overall_state, {group: status}, raw state) of the monitor, with every group state."""
    m = monitors.get_monitor(mid, group_states="all")
    groups = {name: str(g.status) for name, g in (m.state.groups or {}).items()}
    return str(m.overall_state), groups, m.state


def event_messages(server, mid):
    return [d["attributes"]["message"] for d in search(server, f"source:event monitor_id:{mid}")["data"]]


def send(dog, a, b):
    dog.gauge("e2e.cpu", a, tags=["host:a"])
    dog.gauge("e2e.cpu", b, tags=["host:b"])
    dog.flush()


@pytest.fixture
def evaluating(make_server):
    """A server evaluating monitors every second."""
    return make_server(extra_args=["--alerts-eval-interval", "1s"]).start()


def create_and_fire(server, monitors, dog):
    """Creates the CPU monitor and waits until host:a alerts (host:b OK); returns its id."""
    created = monitors.create_monitor(
        body=Monitor(name="cpu high", type=MonitorType.METRIC_ALERT, query=QUERY, message="cpu is high")
    )
    assert str(created.overall_state) == "No Data"

    def fired():
        send(dog, 95, 10)
        overall, groups, _ = states(monitors, created.id)
        return (overall, groups) if groups == {"host:a": "Alert", "host:b": "OK"} else None

    overall, _ = wait_until(fired, timeout=20, interval=0.5, what="host:a alerting, host:b OK")
    assert overall == "Alert"
    return created.id


def triggered(server, mid):
    return [m for m in event_messages(server, mid) if m.startswith("[Triggered] cpu high")]


def test_metric_multi_alert_fires_for_one_host_and_recovers(evaluating):
    server = evaluating
    api, dog = api_clients(server)
    monitors = MonitorsApi(api)
    mid = create_and_fire(server, monitors, dog)
    created = monitors.create_monitor(
        body=Monitor(name="cpu high", type=MonitorType.METRIC_ALERT, query=QUERY, message="cpu is high")
    )
    _, _, state = states(monitors, mid)
    a = state.groups["host:a"]
    assert a.name == "host:a"
    assert a.last_triggered_ts > time.time() - 60

    msgs = wait_until(lambda: triggered(server, mid), timeout=10, what="a [Triggered] event")
    assert "host:a" in msgs[0]

    def recovered():
        send(dog, 20, 10)
        overall, groups, _ = states(monitors, mid)
        return overall if groups == {"host:a": "OK", "host:b": "OK"} else None

    assert wait_until(recovered, timeout=20, interval=0.5, what="host:a recovered") == "OK"
    _, _, state = states(monitors, mid)
    assert state.groups["host:a"].last_resolved_ts >= state.groups["host:a"].last_triggered_ts
    history = state["history"]
    changes = [(h["group"], h["from"], h["to"]) for h in history if h["from"] != h["to"]]
    assert changes == [("host:a", "OK", "Alert"), ("host:a", "Alert", "OK")], history
    wait_until(
        lambda: any(m.startswith("[Recovered] cpu high") for m in event_messages(server, mid)),
        timeout=10,
        what="a [Recovered] event",
    )
    dog.close_socket()
    api.close()


def test_alert_survives_a_restart_without_a_second_event(evaluating):
    server = evaluating
    api, dog = api_clients(server)
    mid = create_and_fire(server, MonitorsApi(api), dog)
    wait_until(lambda: triggered(server, mid), timeout=10, what="a [Triggered] event")
    dog.close_socket()
    api.close()

    server.restart()
    api, dog = api_clients(server)
    monitors = MonitorsApi(api)
    overall, groups, _ = states(monitors, mid)
    assert (overall, groups) == ("Alert", {"host:a": "Alert", "host:b": "OK"})
    for _ in range(6):  # several evaluation cycles, still over the threshold
        send(dog, 95, 10)
        time.sleep(0.5)
    overall, groups, state = states(monitors, mid)
    assert (overall, groups) == ("Alert", {"host:a": "Alert", "host:b": "OK"})
    assert len(triggered(server, mid)) == 1
    changes = [(h["group"], h["from"], h["to"]) for h in state["history"] if h["from"] != h["to"]]
    assert changes == [("host:a", "OK", "Alert")]
    dog.close_socket()
    api.close()


def test_log_alert_fires_on_error_counts_per_host(evaluating):
    server = evaluating
    api, _dog = api_clients(server)
    _dog.close_socket()
    monitors = MonitorsApi(api)
    query = 'logs("service:e2e-web status:error").index("*").rollup("count").by("host").last("5m") > 2'
    mid = monitors.create_monitor(
        body=Monitor(name="web errors", type=MonitorType.LOG_ALERT, query=query, message="errors")
    ).id
    body = [{"message": "boom", "service": "e2e-web", "status": "error", "hostname": h} for h in "aaab"]
    body.append({"message": "fine", "service": "e2e-web", "status": "info", "hostname": "b"})
    r = requests.post(server.http + "/api/v2/logs", json=body, timeout=10)
    assert r.status_code == 202, r.text

    def fired():
        overall, groups, _ = states(monitors, mid)
        return overall if groups == {"host:a": "Alert", "host:b": "OK"} else None

    assert wait_until(fired, timeout=20, interval=0.5, what="host:a alerting on errors") == "Alert"
    wait_until(
        lambda: any(m.startswith("[Triggered] web errors") for m in event_messages(server, mid)),
        timeout=10,
        what="a [Triggered] event",
    )
    api.close()
