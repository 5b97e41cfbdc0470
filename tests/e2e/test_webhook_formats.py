"""Built-in webhook formats end to end on the real binary (SPEC §7, issue #5): a webhook with `format:
alertmanager` receives Alertmanager webhook v4 messages (the fields of the Alertmanager documentation:
version "4", status, receiver, groupLabels, commonLabels, externalURL, alerts[] with labels, annotations,
startsAt, endsAt, fingerprint), `firing` for the host over the threshold of a metric multi-alert `by {host}`
and then `resolved` with the same fingerprint when its value drops; a webhook with `format: slack` receives
Slack's `{"text": …}`. `datadog-api-client`'s `WebhooksIntegrationApi` still reads a webhook with a
`format` (its model has no such field)."""

import re
from datetime import datetime

import requests
from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.api.webhooks_integration_api import WebhooksIntegrationApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_type import MonitorType

from conftest import api_clients, wait_until

WEBHOOKS = "/api/v1/integration/webhooks/configuration/webhooks"
QUERY = "min(last_1m):min:e2e.fmt.temp{*} by {host} > 80"
MESSAGE = ("{{#is_alert}}hot {{host.name}} <{{value}}>{{/is_alert}}{{#is_recovery}}Recovered {{host.name}}"
           "{{/is_recovery}} @webhook-am @webhook-slack")
NO_END = "0001-01-01T00:00:00Z"


def rfc3339(text):
    """The datetime of an RFC 3339 UTC timestamp (`…Z`); fails on anything else."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_alertmanager_and_slack_formats(make_server, webhook_receiver):
    base = webhook_receiver.url

    def posted(name):
        return [r for r in list(webhook_receiver.requests) if r["path"] == f"/hook/{name}"]

    server = make_server(
        extra_args=["--alerts-eval-interval", "1s", "--alerts-webhook-allow", "127.0.0.1/32"]
    ).start()
    api, dog = api_clients(server)

    # The client's WebhooksIntegration model has no `format`: create these with plain HTTP.
    for name, fmt in [("am", "alertmanager"), ("slack", "slack")]:
        r = requests.post(server.http + WEBHOOKS, timeout=10, json={
            "name": name, "url": f"{base}/{name}", "format": fmt, "custom_headers": '{"X-Token": "e2e"}',
        })
        assert r.status_code == 200, r.text
        assert r.json()["format"] == fmt, r.text
    r = requests.post(server.http + WEBHOOKS, timeout=10, json={
        "name": "bad", "url": f"{base}/bad", "format": "alertmanager", "payload": '{"a": 1}',
    })
    assert r.status_code == 400 and "payload is only used with format datadog" in r.text, r.text
    r = requests.post(server.http + WEBHOOKS, timeout=10,
                      json={"name": "bad", "url": f"{base}/bad", "format": "teams"})
    assert r.status_code == 400 and r.json()["errors"] == [
        'format must be "datadog", "alertmanager" or "slack", not "teams"'], r.text

    # Datadog's client still reads a webhook whose answer carries `format`.
    hooks = WebhooksIntegrationApi(api)
    got = hooks.get_webhooks_integration("am")
    assert (got.name, got.url) == ("am", f"{base}/am")

    monitors = MonitorsApi(api)
    mid = monitors.create_monitor(
        body=Monitor(name="fmt temp high", type=MonitorType.METRIC_ALERT, query=QUERY, message=MESSAGE,
                     tags=["team:e2e"])
    ).id

    def send(a, b):
        dog.gauge("e2e.fmt.temp", a, tags=["host:a"])
        dog.gauge("e2e.fmt.temp", b, tags=["host:b"])
        dog.flush()

    def am(status):
        return [r["body"] for r in posted("am") if r["body"].get("status") == status]

    def alerted():
        send(95, 10)
        return am("firing")

    firing = wait_until(alerted, timeout=30, interval=0.5, what="a firing Alertmanager payload")[0]
    assert firing["version"] == "4"
    assert firing["status"] == "firing"
    assert firing["receiver"] == "am"
    assert isinstance(firing["externalURL"], str)
    assert firing["truncatedAlerts"] == 0
    assert isinstance(firing["groupKey"], str) and "fmt temp high" in firing["groupKey"], firing
    assert firing["groupLabels"] == {"alertname": "fmt temp high", "monitor_id": str(mid)}, firing
    assert len(firing["alerts"]) == 1, firing
    alert = firing["alerts"][0]
    labels = alert["labels"]
    assert alert["status"] == "firing"
    assert labels["alertname"] == "fmt temp high"
    assert labels["host"] == "a", labels
    assert "severity" not in labels and alert["annotations"]["severity"] == "critical"
    assert labels["monitor_id"] == str(mid)
    assert labels["team"] == "e2e"
    assert firing["commonLabels"] == labels
    assert firing["commonAnnotations"] == alert["annotations"]
    assert "Triggered" in alert["annotations"]["summary"] and "host:a" in alert["annotations"]["summary"]
    assert alert["annotations"]["description"].startswith("hot a <95"), alert
    assert float(alert["annotations"]["value"]) == 95
    starts = rfc3339(alert["startsAt"])
    assert alert["endsAt"] == NO_END
    assert alert["generatorURL"].endswith(f"/monitors/{mid}"), alert
    assert re.fullmatch(r"[0-9a-f]{16}", alert["fingerprint"]), alert
    assert not [f for f in am("firing") if f["alerts"][0]["labels"].get("host") == "b"]
    assert posted("am")[0]["headers"].get("x-token") == "e2e"
    assert posted("am")[0]["headers"].get("content-type") == "application/json"

    def slack_texts():
        return [r["body"] for r in posted("slack")]

    slack = wait_until(slack_texts, timeout=10, what="a Slack payload")[0]
    assert set(slack) == {"text"}, slack
    assert "host:a" in slack["text"] and "hot a &lt;95" in slack["text"], slack
    assert slack["text"].startswith("*[Triggered on {host:a}] fmt temp high*\n"), slack

    def recovered():
        send(20, 10)
        return am("resolved")

    resolved = wait_until(recovered, timeout=30, interval=0.5, what="a resolved Alertmanager payload")[0]
    ralert = resolved["alerts"][0]
    assert resolved["version"] == "4" and resolved["receiver"] == "am"
    assert ralert["status"] == "resolved"
    assert ralert["fingerprint"] == alert["fingerprint"]
    assert ralert["labels"] == labels
    assert ralert["startsAt"] == alert["startsAt"], (alert, ralert)
    assert rfc3339(ralert["endsAt"]) > starts
    assert "Recovered" in ralert["annotations"]["summary"]

    texts = wait_until(lambda: [s for s in slack_texts() if "Recovered" in s["text"]], timeout=10,
                       what="a Slack recovery payload")
    assert "host:a" in texts[0]["text"], texts

    def attempts():
        notes = monitors.get_monitor(mid, group_states="all").state["notifications"]
        return notes if len(notes) >= 4 else None

    notes = wait_until(attempts, timeout=10, what="four recorded attempts")
    assert sorted((n["webhook"], n["transition"]) for n in notes) == [
        ("am", "Recovered"), ("am", "Triggered"), ("slack", "Recovered"), ("slack", "Triggered")], notes
    assert all(n["ok"] for n in notes), notes
    dog.close_socket()
    api.close()
