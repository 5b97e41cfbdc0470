"""Monitor groups that stop reporting, end to end on the real binary (SPEC §7): with `--alerts-group-expiry 3s`, an
OK group whose host stopped sending leaves the monitor's group states (`GET /api/v1/monitor/{id}?group_states=all`)
once its last point is out of the window and 3 s old, without a transition, while the host that keeps reporting
stays; the removal is persisted (it stays gone after a restart)."""

import time

import requests
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_type import MonitorType

from conftest import api_clients, wait_until

ARGS = ["--alerts-eval-interval", "1s", "--alerts-group-expiry", "3s"]


def send(server, host, ts, value=10.0):
    body = {"series": [{"metric": "e2e.expiry", "type": 3, "tags": [f"host:{host}"],
                        "points": [{"timestamp": int(ts), "value": value}]}]}
    r = requests.post(f"{server.http}/api/v2/series", json=body, timeout=10)
    assert r.status_code == 202, r.text


def state(server, mid):
    r = requests.get(f"{server.http}/api/v1/monitor/{mid}", params={"group_states": "all"}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()


def groups(server, mid):
    return sorted(state(server, mid)["state"]["groups"])


def test_a_silent_ok_group_expires(make_server):
    server = make_server(extra_args=ARGS).start()
    api, dog = api_clients(server)
    mid = MonitorsApi(api).create_monitor(body=Monitor(
        name="expiry", type=MonitorType.METRIC_ALERT, query="avg(last_1m):avg:e2e.expiry{*} by {host} > 80",
        message="hot",
    )).id
    # Host b's only point is 45 s old: in the one-minute window for about 15 s more, then silent.
    send(server, "b", time.time() - 45)

    def reporting(want):
        def step():
            send(server, "a", time.time())
            return groups(server, mid) == want
        return step

    wait_until(reporting(["host:a", "host:b"]), timeout=12, interval=0.5, what="hosts a and b seen")
    wait_until(reporting(["host:a"]), timeout=40, interval=0.5, what="host:b expired")
    got = state(server, mid)
    assert got["overall_state"] == "OK"
    assert got["state"]["groups"]["host:a"]["status"] == "OK"
    assert got["state"]["history"] == []
    # Persisted: a restart does not bring it back.
    server.restart()
    send(server, "a", time.time())
    time.sleep(2)
    assert groups(server, mid) == ["host:a"]
    dog.close_socket()
    api.close()
