"""The downtimes v2 API end to end on the real binary (SPEC §7, issue #5): `datadog-api-client` DowntimesApi create
for a monitor id and for monitor tags, get, list (with `current_only`), update of the end, cancel (then get shows
`canceled`), an invalid scope answered 400 naming the field, and downtimes surviving a restart."""

import json
from datetime import datetime, timedelta, timezone

import pytest
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v2.api.downtimes_api import DowntimesApi
from datadog_api_client.v2.model.downtime_create_request import DowntimeCreateRequest
from datadog_api_client.v2.model.downtime_create_request_attributes import DowntimeCreateRequestAttributes
from datadog_api_client.v2.model.downtime_create_request_data import DowntimeCreateRequestData
from datadog_api_client.v2.model.downtime_monitor_identifier_id import DowntimeMonitorIdentifierId
from datadog_api_client.v2.model.downtime_monitor_identifier_tags import DowntimeMonitorIdentifierTags
from datadog_api_client.v2.model.downtime_notify_end_state_actions import DowntimeNotifyEndStateActions
from datadog_api_client.v2.model.downtime_notify_end_state_types import DowntimeNotifyEndStateTypes
from datadog_api_client.v2.model.downtime_resource_type import DowntimeResourceType
from datadog_api_client.v2.model.downtime_schedule_one_time_create_update_request import (
    DowntimeScheduleOneTimeCreateUpdateRequest,
)
from datadog_api_client.v2.model.downtime_status import DowntimeStatus
from datadog_api_client.v2.model.downtime_update_request import DowntimeUpdateRequest
from datadog_api_client.v2.model.downtime_update_request_attributes import DowntimeUpdateRequestAttributes
from datadog_api_client.v2.model.downtime_update_request_data import DowntimeUpdateRequestData

from conftest import api_client


def utc(dt: datetime) -> datetime:
    return dt.replace(microsecond=0, tzinfo=timezone.utc)


def create_body(scope="env:prod", monitor_identifier=None, start=None, end=None, **attrs):
    schedule = None
    if start is not None or end is not None:
        schedule = DowntimeScheduleOneTimeCreateUpdateRequest(start=start, end=end)
    kwargs = dict(scope=scope, monitor_identifier=monitor_identifier or DowntimeMonitorIdentifierId(monitor_id=123))
    if schedule is not None:
        kwargs["schedule"] = schedule
    kwargs.update(attrs)
    return DowntimeCreateRequest(
        data=DowntimeCreateRequestData(
            type=DowntimeResourceType.DOWNTIME,
            attributes=DowntimeCreateRequestAttributes(**kwargs),
        )
    )


def error_text(e: ApiException) -> str:
    body = e.body if isinstance(e.body, dict) else json.loads(e.body)
    return " ".join(body["errors"])


def test_downtime_crud(server, api):
    downtimes = DowntimesApi(api)
    now = utc(datetime.now(timezone.utc))
    by_id = downtimes.create_downtime(
        body=create_body(
            scope="env:prod host:a",
            monitor_identifier=DowntimeMonitorIdentifierId(monitor_id=123),
            message="maintenance @webhook-ops",
            end=now + timedelta(hours=1),
            notify_end_states=[DowntimeNotifyEndStateTypes.ALERT],
            notify_end_types=[DowntimeNotifyEndStateActions.CANCELED, DowntimeNotifyEndStateActions.EXPIRED],
        )
    ).data
    assert by_id.type == DowntimeResourceType.DOWNTIME and by_id.id
    a = by_id.attributes
    assert a.status == DowntimeStatus.ACTIVE
    assert a.scope == "env:prod host:a"
    assert a.monitor_identifier.monitor_id == 123
    assert a.message == "maintenance @webhook-ops"
    assert a.schedule.end == now + timedelta(hours=1)
    assert abs((a.schedule.start - now).total_seconds()) < 60
    assert a.notify_end_states == [DowntimeNotifyEndStateTypes.ALERT]
    assert a.canceled is None and a.created <= a.modified

    later = now + timedelta(days=1)
    by_tags = downtimes.create_downtime(
        body=create_body(
            scope="*",
            monitor_identifier=DowntimeMonitorIdentifierTags(monitor_tags=["team:a", "env:prod"]),
            start=later,
            end=later + timedelta(hours=2),
        )
    ).data
    assert by_tags.attributes.status == DowntimeStatus.SCHEDULED
    assert by_tags.attributes.monitor_identifier.monitor_tags == ["team:a", "env:prod"]
    assert by_tags.attributes.schedule.start == later
    assert by_tags.attributes.display_timezone == "UTC"

    got = downtimes.get_downtime(downtime_id=by_id.id).data
    assert got.id == by_id.id and got.attributes.scope == "env:prod host:a"

    listed = downtimes.list_downtimes()
    assert [d.id for d in listed.data] == [by_id.id, by_tags.id]
    assert listed.meta.page.total_filtered_count == 2
    current = downtimes.list_downtimes(current_only=True)
    assert [d.id for d in current.data] == [by_id.id]

    new_end = now + timedelta(hours=3)
    updated = downtimes.update_downtime(
        downtime_id=by_id.id,
        body=DowntimeUpdateRequest(
            data=DowntimeUpdateRequestData(
                id=by_id.id,
                type=DowntimeResourceType.DOWNTIME,
                attributes=DowntimeUpdateRequestAttributes(
                    schedule=DowntimeScheduleOneTimeCreateUpdateRequest(end=new_end),
                ),
            )
        ),
    ).data
    assert updated.attributes.schedule.end == new_end
    assert updated.attributes.scope == "env:prod host:a"
    assert updated.attributes.status == DowntimeStatus.ACTIVE

    downtimes.cancel_downtime(downtime_id=by_id.id)
    canceled = downtimes.get_downtime(downtime_id=by_id.id).data.attributes
    assert canceled.status == DowntimeStatus.CANCELED
    assert canceled.canceled is not None
    assert [d.id for d in downtimes.list_downtimes(current_only=True).data] == []
    assert len(downtimes.list_downtimes().data) == 2

    with pytest.raises(ApiException) as e:
        downtimes.get_downtime(downtime_id="no-such-downtime")
    assert e.value.status == 404


@pytest.mark.parametrize(
    "body, field",
    [
        (dict(scope="env:(prod"), "scope"),
        (dict(scope="env:prod}"), "scope"),
        (dict(scope="   "), "scope"),
    ],
)
def test_invalid_scope_is_400(server, api, body, field):
    with pytest.raises(ApiException) as e:
        DowntimesApi(api).create_downtime(body=create_body(**body))
    assert e.value.status == 400
    assert field in error_text(e.value)


def test_end_before_start_is_400(server, api):
    now = utc(datetime.now(timezone.utc))
    with pytest.raises(ApiException) as e:
        DowntimesApi(api).create_downtime(body=create_body(start=now, end=now - timedelta(hours=1)))
    assert e.value.status == 400
    assert "schedule.end" in error_text(e.value)


def test_downtimes_survive_restart(make_server):
    server = make_server().start()
    now = utc(datetime.now(timezone.utc))
    with api_client(server) as c:
        downtimes = DowntimesApi(c)
        a = downtimes.create_downtime(body=create_body(end=now + timedelta(hours=1))).data
        b = downtimes.create_downtime(
            body=create_body(monitor_identifier=DowntimeMonitorIdentifierTags(monitor_tags=["team:a"]))
        ).data
        downtimes.cancel_downtime(downtime_id=b.id)
    server.restart()
    with api_client(server) as c:
        downtimes = DowntimesApi(c)
        kept = downtimes.list_downtimes().data
        assert [d.id for d in kept] == [a.id, b.id]
        got = downtimes.get_downtime(downtime_id=a.id).data.attributes
        assert got.status == DowntimeStatus.ACTIVE
        assert got.schedule.end == now + timedelta(hours=1)
        assert got.created == a.attributes.created
        assert downtimes.get_downtime(downtime_id=b.id).data.attributes.status == DowntimeStatus.CANCELED
    assert (server.data_dir / "downtimes" / "downtimes.json").exists()
