"""The monitor API end to end on the real binary (SPEC §7, issue #5): `datadog-api-client` MonitorsApi create, get,
list with name and tag filters, update, validate (valid, and invalid answered 400 naming the position), delete then
404; monitors and their ids surviving a restart. A new monitor with no evaluated data is "No Data"."""

import json
from datetime import datetime

import pytest
import requests
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_options import MonitorOptions
from datadog_api_client.v1.model.monitor_overall_states import MonitorOverallStates
from datadog_api_client.v1.model.monitor_thresholds import MonitorThresholds
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.v1.model.monitor_update_request import MonitorUpdateRequest

CPU_QUERY = "avg(last_5m):avg:system.cpu.user{env:prod} by {host} > 80"
LOG_QUERY = 'logs("service:web status:error").index("*").rollup("count").by("host").last("5m") > 10'

from conftest import api_client


def cpu_monitor(name="cpu high", tags=("team:infra", "env:prod")):
    return Monitor(
        name=name,
        type=MonitorType.METRIC_ALERT,
        query=CPU_QUERY,
        message="CPU is high on {{host.name}} @webhook-ops",
        tags=list(tags),
        priority=2,
        options=MonitorOptions(
            thresholds=MonitorThresholds(critical=80.0, warning=70.0, critical_recovery=75.0),
            notify_no_data=True,
            no_data_timeframe=10,
            renotify_interval=30,
            evaluation_delay=60,
            new_group_delay=120,
            require_full_window=False,
            include_tags=True,
        ),
    )


def error_text(e: ApiException) -> str:
    body = e.body if isinstance(e.body, dict) else json.loads(e.body)
    return " ".join(body["errors"])


def test_monitor_crud(server, api):
    monitors = MonitorsApi(api)
    created = monitors.create_monitor(body=cpu_monitor())
    assert created.id > 0
    assert created.name == "cpu high"
    assert created.type == MonitorType.METRIC_ALERT
    assert created.query == CPU_QUERY
    assert created.tags == ["team:infra", "env:prod"]
    assert created.priority == 2
    assert created.multi is True
    assert created.overall_state == MonitorOverallStates.NO_DATA
    assert created.deleted is None
    assert created.restricted_roles is None
    assert created.state.groups == {}
    assert created.creator.handle
    assert isinstance(created.created, datetime) and created.modified == created.created
    assert created.options.thresholds.critical == 80.0
    assert created.options.thresholds.warning == 70.0
    assert created.options.thresholds.critical_recovery == 75.0
    assert created.options.notify_no_data is True
    assert created.options.no_data_timeframe == 10
    assert created.options.new_group_delay == 120

    logs = monitors.create_monitor(body=Monitor(
        name="web errors", type=MonitorType.LOG_ALERT, query=LOG_QUERY, message="errors", tags=["team:web"],
    ))
    assert logs.id > created.id
    assert logs.multi is True
    assert logs.options.thresholds.critical == 10.0

    got = monitors.get_monitor(monitor_id=created.id)
    assert got.id == created.id and got.query == CPU_QUERY and got.message == created.message

    assert [m.id for m in monitors.list_monitors()] == [created.id, logs.id]
    assert [m.id for m in monitors.list_monitors(name="CPU")] == [created.id]
    assert [m.id for m in monitors.list_monitors(monitor_tags="team:web")] == [logs.id]
    assert [m.id for m in monitors.list_monitors(tags="env:prod")] == [created.id]
    assert [m.id for m in monitors.list_monitors(name="nothing-like-this")] == []
    assert [m.id for m in monitors.list_monitors(page=1, page_size=1)] == [logs.id]

    updated = monitors.update_monitor(monitor_id=created.id, body=MonitorUpdateRequest(
        name="cpu very high", query=CPU_QUERY.replace("> 80", "> 90"),
        options=MonitorOptions(thresholds=MonitorThresholds(critical=90.0, warning=85.0)),
    ))
    assert updated.id == created.id
    assert updated.name == "cpu very high"
    assert updated.query.endswith("> 90")
    assert updated.options.thresholds.critical == 90.0
    assert updated.message == created.message
    assert updated.created == created.created
    assert updated.modified >= created.modified
    assert monitors.get_monitor(monitor_id=created.id).name == "cpu very high"

    # An update that breaks the thresholds is refused and changes nothing.
    with pytest.raises(ApiException) as e:
        monitors.update_monitor(monitor_id=created.id, body=MonitorUpdateRequest(
            options=MonitorOptions(thresholds=MonitorThresholds(critical=90.0, warning=95.0)),
        ))
    assert e.value.status == 400
    assert "warning (95) must be below options.thresholds.critical (90)" in error_text(e.value)
    assert monitors.get_monitor(monitor_id=created.id).options.thresholds.warning == 85.0

    deleted = monitors.delete_monitor(monitor_id=created.id)
    assert deleted.deleted_monitor_id == created.id
    with pytest.raises(ApiException) as e:
        monitors.get_monitor(monitor_id=created.id)
    assert e.value.status == 404
    assert error_text(e.value) == f"monitor {created.id} not found"
    assert [m.id for m in monitors.list_monitors()] == [logs.id]


def test_validate_monitor(server, api):
    monitors = MonitorsApi(api)
    assert monitors.validate_monitor(body=cpu_monitor()) == {}

    bad = [
        # (type, query, options, text in the error)
        (MonitorType.METRIC_ALERT, "avg(last_5m):avg:system.cpu.user{env:prod > 80", None, "at position"),
        (MonitorType.LOG_ALERT, 'logs("status:error").last("5m") >', None, "at position"),
        (MonitorType.METRIC_ALERT, CPU_QUERY, MonitorOptions(thresholds=MonitorThresholds(critical=70.0)),
         "must equal the threshold of the query (80)"),
        (MonitorType.SERVICE_CHECK, '"http.can_connect".over("*").by("host").last(2).count_by_status()', None,
         'unsupported monitor type "service check"'),
    ]
    for kind, query, options, text in bad:
        body = Monitor(name="bad", type=kind, query=query)
        if options is not None:
            body.options = options
        with pytest.raises(ApiException) as e:
            monitors.validate_monitor(body=body)
        assert e.value.status == 400, query
        assert text in error_text(e.value), (query, e.value.body)
        # The same body is refused at creation too, and nothing is stored.
        with pytest.raises(ApiException) as e:
            monitors.create_monitor(body=body)
        assert e.value.status == 400
    assert monitors.list_monitors() == []

    # A 400 names the position of the parse error in the query text.
    r = requests.post(server.http + "/api/v1/monitor/validate", timeout=10, json={
        "type": "metric alert", "query": "avg(last_5m):avg:cpu{*} >> 80"})
    assert r.status_code == 400
    assert "at position" in r.json()["errors"][0]


def test_monitors_survive_restart(make_server):
    server = make_server().start()
    with api_client(server) as c:
        monitors = MonitorsApi(c)
        a = monitors.create_monitor(body=cpu_monitor(name="a"))
        b = monitors.create_monitor(body=cpu_monitor(name="b"))
        monitors.delete_monitor(monitor_id=b.id)
    server.restart()
    with api_client(server) as c:
        monitors = MonitorsApi(c)
        kept = monitors.list_monitors()
        assert [m.id for m in kept] == [a.id]
        got = monitors.get_monitor(monitor_id=a.id)
        assert got.name == "a" and got.query == CPU_QUERY and got.created == a.created
        assert got.options.thresholds.warning == 70.0
        # The deleted (highest) id is never handed out again.
        c2 = monitors.create_monitor(body=cpu_monitor(name="c"))
        assert c2.id > b.id
    assert (server.data_dir / "monitors" / "monitors.json").exists()
