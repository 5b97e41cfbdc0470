"""Webhook notifications end to end on the real binary (SPEC §7, §9, issue #5): a local HTTP receiver on
127.0.0.1 (allowed with `--alerts-webhook-allow 127.0.0.1/32`) gets Datadog's default payload when a metric
multi-alert `by {host}` fires for the host over the threshold, with the templated message, then a payload
containing `Recovered` when the value drops; a second webhook pointing at a private address is refused, and
every attempt shows in `state.notifications` of `MonitorsApi.get_monitor(id, group_states="all")`."""

from datadog_api_client.v1.api.monitors_api import MonitorsApi
from datadog_api_client.v1.api.webhooks_integration_api import WebhooksIntegrationApi
from datadog_api_client.v1.model.monitor import Monitor
from datadog_api_client.v1.model.monitor_type import MonitorType
from datadog_api_client.v1.model.webhooks_integration import WebhooksIntegration

from conftest import REPO, WebhookReceiver, api_clients, wait_until

QUERY = "min(last_1m):min:e2e.temp{*} by {host} > 80"
MESSAGE = ("{{#is_alert}}hot {{host.name}}{{/is_alert}}{{#is_recovery}}Recovered {{host.name}}{{/is_recovery}}"
           " @webhook-ops @webhook-blocked")


def test_webhook_gets_alert_then_recovery(make_server, webhook_receiver):
    url, bodies = webhook_receiver.url, webhook_receiver.requests
    server = make_server(
        extra_args=["--alerts-eval-interval", "1s", "--alerts-webhook-allow", "127.0.0.1/32"]
    ).start()
    api, dog = api_clients(server)
    hooks = WebhooksIntegrationApi(api)
    hooks.create_webhooks_integration(
        body=WebhooksIntegration(name="ops", url=url, custom_headers='{"X-Token": "e2e"}')
    )
    hooks.create_webhooks_integration(body=WebhooksIntegration(name="blocked", url="http://10.255.255.1:9/x"))
    monitors = MonitorsApi(api)
    mid = monitors.create_monitor(
        body=Monitor(name="temp high", type=MonitorType.METRIC_ALERT, query=QUERY, message=MESSAGE)
    ).id

    def send(a, b):
        dog.gauge("e2e.temp", a, tags=["host:a"])
        dog.gauge("e2e.temp", b, tags=["host:b"])
        dog.flush()

    def got(word):
        return [b["body"] for b in bodies if word in b["body"].get("body", "")]

    def alerted():
        send(95, 10)
        return got("hot a")

    alerts = wait_until(alerted, timeout=30, interval=0.5, what="an alert payload")
    a = alerts[0]
    assert a["body"].startswith("hot a"), a
    assert "Triggered" in a["title"] and "host:a" in a["title"], a
    assert a["event_type"] == "query_alert_monitor"
    assert {"last_updated", "date", "org", "id"} <= set(a), a
    assert bodies[0]["headers"].get("x-token") == "e2e"
    assert not got("hot b")

    def recovered():
        send(20, 10)
        return got("Recovered a")

    rec = wait_until(recovered, timeout=30, interval=0.5, what="a recovery payload")
    assert "Recovered" in rec[0]["title"], rec[0]

    def attempts():
        state = monitors.get_monitor(mid, group_states="all").state
        notes = state["notifications"]
        return notes if len(notes) >= 4 else None

    notes = wait_until(attempts, timeout=10, what="four recorded attempts")
    ops = [n for n in notes if n["webhook"] == "ops"]
    blocked = [n for n in notes if n["webhook"] == "blocked"]
    assert [n["transition"] for n in ops] == ["Triggered", "Recovered"], notes
    assert all(n["ok"] and n["status"] == 200 for n in ops), notes
    assert blocked and all(not n["ok"] and n["error"].startswith("refused") for n in blocked), notes
    dog.close_socket()
    api.close()


def test_https_webhook_trusts_the_configured_ca(make_server):
    """An https:// webhook whose certificate (for 127.0.0.1) is signed by a private CA given with
    --alerts-webhook-ca-file gets the notification over TLS."""
    tls_dir = REPO / "query" / "testdata" / "tls"
    receiver = WebhookReceiver(tls=(str(tls_dir / "server.pem"), str(tls_dir / "server.key")))
    try:
        assert receiver.url.startswith("https://127.0.0.1:")
        server = make_server(extra_args=[
            "--alerts-eval-interval", "1s", "--alerts-webhook-allow", "127.0.0.1/32",
            "--alerts-webhook-ca-file", str(tls_dir / "ca.pem"),
        ]).start()
        api, dog = api_clients(server)
        WebhooksIntegrationApi(api).create_webhooks_integration(
            body=WebhooksIntegration(name="secure", url=receiver.url, payload='{"t": "$ALERT_TRANSITION", "link": "$LINK"}')
        )
        mid = MonitorsApi(api).create_monitor(
            body=Monitor(name="temp high", type=MonitorType.METRIC_ALERT, query=QUERY, message="hot @webhook-secure")
        ).id

        def delivered():
            dog.gauge("e2e.temp", 95, tags=["host:a"])
            dog.flush()
            return receiver.bodies()

        bodies = wait_until(delivered, timeout=20, interval=0.5, what="a notification over https")
        # $LINK defaults to the HTTP listener's address.
        assert bodies[0] == {"t": "Triggered", "link": f"{server.http}/monitors/{mid}"}, bodies
        notes = wait_until(lambda: MonitorsApi(api).get_monitor(mid, group_states="all").state["notifications"],
                           timeout=10, what="the recorded attempt")
        assert [(n["webhook"], n["status"], n["ok"]) for n in notes] == [("secure", 200, True)], notes
        dog.close_socket()
        api.close()
    finally:
        receiver.stop()
