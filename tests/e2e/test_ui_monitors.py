"""The web UI's monitor form and mute (issue #6, SPEC §7, §8b) in a real browser against the real binary: a monitor
created in the form exists through the API (`datadog-api-client` MonitorsApi) with its thresholds; the form validates
as you type (an invalid query names the position) and charts the metric query with its threshold lines; editing
saves through PUT; "Mute" creates an active downtime for the monitor (the downtimes v2 API) and "Unmute" cancels it;
"Delete" (confirmed in the page, no dialog) deletes it. Every visit: no console error, failed request or XSS."""

import re
import time
from datetime import datetime, timezone

import pytest
import requests
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v1.api.monitors_api import MonitorsApi

from conftest import api_client
from ui_helpers import SCREENSHOTS, browse, problems, ui  # noqa: F401 (ui is a fixture)

CHART = '[data-testid=monitor-chart][data-series-count]:not([data-series-count="0"])'
TESTIDS = ["monitor-form", "monitor-form-error", "monitor-chart", "downtime-row", "monitor-unmute"]


def visit(path, actions, wait_for=None, screenshot=None, attributes=None):
    v = {"path": path, "waitFor": wait_for, "actions": actions, "testids": TESTIDS,
         "screenshot": str(SCREENSHOTS / screenshot) if screenshot else None}
    if attributes:
        v["attributes"] = attributes
    return v


def fill_form(name, query, critical, warning, message):
    return [
        {"waitFor": "[data-testid=monitor-form]"},
        {"fill": "[data-testid=monitor-name]", "text": name},
        {"fill": "[data-testid=monitor-query]", "text": query},
        {"fill": "[data-testid=monitor-critical]", "text": critical},
        {"fill": "[data-testid=monitor-warning]", "text": warning},
        {"fill": "[data-testid=monitor-message]", "text": message},
    ]


def monitor_named(server, name):
    with api_client(server) as api:
        found = [m for m in MonitorsApi(api).list_monitors(name=name) if m.name == name]
    assert len(found) == 1, [m.name for m in found]
    return found[0]


def get_monitor(server, monitor_id):
    with api_client(server) as api:
        return MonitorsApi(api).get_monitor(monitor_id=monitor_id)


def downtimes_of(server, monitor_id):
    r = requests.get(server.http + "/api/v2/downtime", timeout=10)
    assert r.status_code == 200, r.text
    return [d for d in r.json()["data"] if d["attributes"]["monitor_identifier"].get("monitor_id") == monitor_id]


def validate_400(f):
    return f.get("status") == 400 and f["url"].endswith("/validate")


@pytest.fixture(scope="module")
def created(ui):
    """A monitor created in the form (the other tests edit, mute and delete it)."""
    server, data = ui
    name = f"UI form latency {data['run']}"
    query = "avg(last_5m):avg:ui.checkout.latency{*} by {service} > 100"
    (res,) = browse(server.http, [visit("/monitors", [
        {"click": "[data-testid=monitor-new]"},
        *fill_form(name, query, "100", "80", "Latency is {{value}} @webhook-none"),
        {"waitFor": CHART},
        {"click": "[data-testid=monitor-save]"},
        {"waitFor": "[data-testid=monitor-edit]"},
        {"waitForText": name},
    ], wait_for="[data-testid=monitor-new]")])
    assert not problems(res), problems(res)
    m = re.search(r"/monitors/(\d+)$", res["url"])
    assert m, res["url"]
    return server, data, int(m.group(1)), name, query


BAD_QUERY = "avg(last_5m):avg:ui.checkout.latency{* > 100"


def test_form_validates_and_charts_the_query(ui):
    server, data = ui
    query = "avg(last_5m):avg:ui.checkout.latency{*} by {service} > 100"
    form, invalid = browse(server.http, [
        visit("/monitors/new", [
            *fill_form(f"UI chart only {data['run']}", query, "100", "80", "{{#is_alert}}slow{{/is_alert}}"),
            {"waitFor": CHART},
            {"sleep": 600},
        ], wait_for="[data-testid=monitor-form]", screenshot="monitor-form.png"),
        visit("/monitors/new", [
            {"fill": "[data-testid=monitor-query]", "text": BAD_QUERY},
            {"waitFor": "[data-testid=monitor-form-error]"},
            {"waitForText": "position"},
            {"waitFor": "[data-testid=query-error-snippet]"},
        ], wait_for="[data-testid=monitor-form]", attributes=[
            {"selector": "[data-testid=query-error-snippet]", "names": ["data-position", "data-index"]}]),
    ])
    assert not problems(form), problems(form)
    assert form["counts"]["monitor-chart"] == 1 and form["counts"]["monitor-form-error"] == 0, form["counts"]
    # The threshold lines' legend (text) and the series of the one planted service.
    assert "critical" in form["text"] and "warning" in form["text"], form["text"][:2000]
    assert data["svc_a"] in form["text"]
    assert (SCREENSHOTS / "monitor-form.png").stat().st_size > 0
    # Nothing was saved from the form that was only filled.
    with api_client(server) as api:
        assert not [m for m in MonitorsApi(api).list_monitors(name=f"UI chart only {data['run']}")]

    # The validate call answers 400 (the only failure allowed); the error says where the query went wrong.
    assert not problems(invalid, allow=validate_400), problems(invalid, allow=validate_400)
    assert any(validate_400(f) for f in invalid["failedRequests"]), invalid["failedRequests"]
    errors = invalid["texts"]["monitor-form-error"]
    assert len(errors) == 1 and "position" in errors[0], errors
    assert invalid["counts"]["monitor-chart"] == 0
    # The excerpt under the query puts its caret at the position the API names for the same query.
    r = requests.post(f"{server.http}/api/v1/monitor/validate", timeout=10, json={
        "type": "metric alert", "query": BAD_QUERY, "options": {"thresholds": {"critical": 100}}})
    assert r.status_code == 400, r.text
    position = int(re.search(r"at position (\d+)", r.json()["errors"][0]).group(1))
    (snippet,) = invalid["attributes"]["[data-testid=query-error-snippet]"]
    assert snippet["data-position"] == str(position), (snippet, r.text)
    assert BAD_QUERY[int(snippet["data-index"])] == ">"


def test_monitor_created_in_the_form_exists_through_the_api(created):
    server, _, monitor_id, name, query = created
    m = monitor_named(server, name)
    assert m.id == monitor_id
    assert m.query == query and str(m.type) == "metric alert"
    assert m.options.thresholds.critical == 100.0 and m.options.thresholds.warning == 80.0
    assert m.message == "Latency is {{value}} @webhook-none"


def test_edit_saves_through_put(created):
    server, _, monitor_id, name, _ = created
    (res,) = browse(server.http, [visit(f"/monitors/{monitor_id}", [
        {"click": "[data-testid=monitor-edit]"},
        {"waitFor": "[data-testid=monitor-form]"},
        {"waitFor": CHART},
        {"fill": "[data-testid=monitor-critical]", "text": "120"},
        {"fill": "[data-testid=monitor-warning]", "text": "90"},
        {"sleep": 600},
        {"click": "[data-testid=monitor-save]"},
        {"waitFor": "[data-testid=monitor-edit]"},
        {"waitForText": "> 120"},
    ], wait_for="[data-testid=monitor-edit]")])
    assert not problems(res), problems(res)
    assert res["url"].endswith(f"/monitors/{monitor_id}"), res["url"]
    m = get_monitor(server, monitor_id)
    assert m.name == name and m.query.endswith("> 120"), m.query
    assert m.options.thresholds.critical == 120.0 and m.options.thresholds.warning == 90.0


def test_mute_and_unmute(created):
    server, _, monitor_id, _, _ = created
    before = time.time()
    (muted,) = browse(server.http, [visit(f"/monitors/{monitor_id}", [
        {"click": "[data-testid=monitor-mute]"},
        {"waitFor": "[data-testid=monitor-unmute]"},
    ], wait_for="[data-testid=monitor-mute]", screenshot="monitor-muted.png")])
    assert not problems(muted), problems(muted)
    assert muted["counts"]["downtime-row"] == 1, muted["counts"]
    dts = downtimes_of(server, monitor_id)
    assert len(dts) == 1, dts
    a = dts[0]["attributes"]
    assert a["status"] == "active" and a["scope"] == "*", a
    end = datetime.fromisoformat(a["schedule"]["end"].replace("Z", "+00:00")).astimezone(timezone.utc).timestamp()
    assert before + 3600 - 60 <= end <= time.time() + 3600 + 60, a["schedule"]
    assert (SCREENSHOTS / "monitor-muted.png").stat().st_size > 0

    (unmuted,) = browse(server.http, [visit(f"/monitors/{monitor_id}", [
        {"click": "[data-testid=monitor-unmute]"},
        {"waitFor": "[data-testid=monitor-unmute]", "state": "detached"},
    ], wait_for="[data-testid=monitor-unmute]")])
    assert not problems(unmuted), problems(unmuted)
    assert unmuted["counts"]["downtime-row"] == 0
    assert [d["attributes"]["status"] for d in downtimes_of(server, monitor_id)] == ["canceled"]


def test_delete_confirms_in_the_page(created):
    server, _, monitor_id, name, _ = created
    # Asking, then thinking better of it, keeps the monitor.
    (kept,) = browse(server.http, [visit(f"/monitors/{monitor_id}", [
        {"click": "[data-testid=monitor-delete]"},
        {"waitFor": "[data-testid=monitor-delete-confirm]"},
        {"click": "[data-testid=monitor-delete-confirmation] button:has-text(\"Cancel\")"},
        {"waitFor": "[data-testid=monitor-delete]"},
    ], wait_for="[data-testid=monitor-delete]")])
    assert not problems(kept), problems(kept)
    assert get_monitor(server, monitor_id).name == name

    (deleted,) = browse(server.http, [visit(f"/monitors/{monitor_id}", [
        {"click": "[data-testid=monitor-delete]"},
        {"click": "[data-testid=monitor-delete-confirm]"},
        {"waitFor": "[data-testid=monitor-new]"},
    ], wait_for="[data-testid=monitor-delete]")])
    assert not problems(deleted), problems(deleted)
    assert deleted["url"].endswith("/monitors"), deleted["url"]
    with pytest.raises(ApiException) as e:
        get_monitor(server, monitor_id)
    assert e.value.status == 404
