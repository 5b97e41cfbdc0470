"""The webhooks integration configuration API end to end on the real binary (SPEC §7, issue #5):
`datadog-api-client` WebhooksIntegrationApi create, get, update with rename, delete then 404; a duplicate name and
invalid fields answered 400 naming the problem; webhooks surviving a restart. Delivery: test_monitor_webhooks.py."""

import json

import pytest
import requests
from datadog_api_client.exceptions import ApiException
from datadog_api_client.v1.api.webhooks_integration_api import WebhooksIntegrationApi
from datadog_api_client.v1.model.webhooks_integration import WebhooksIntegration
from datadog_api_client.v1.model.webhooks_integration_encoding import WebhooksIntegrationEncoding
from datadog_api_client.v1.model.webhooks_integration_update_request import WebhooksIntegrationUpdateRequest

PATH = "/api/v1/integration/webhooks/configuration/webhooks"
PAYLOAD = '{"title": "$ALERT_TITLE", "status": "$ALERT_STATUS", "id": $ID}'
HEADERS = '{"X-Team": "ops", "Authorization": "Bearer t0k3n"}'

from conftest import api_client


def error_text(e: ApiException) -> str:
    body = e.body if isinstance(e.body, dict) else json.loads(e.body)
    return " ".join(body["errors"])


def test_webhook_crud(server, api):
    hooks = WebhooksIntegrationApi(api)
    created = hooks.create_webhooks_integration(
        body=WebhooksIntegration(name="ops", url="https://hooks.example.com/alert?x=1", payload=PAYLOAD,
                                 custom_headers=HEADERS)
    )
    assert (created.name, created.url, created.payload, created.custom_headers) == (
        "ops", "https://hooks.example.com/alert?x=1", PAYLOAD, HEADERS)
    assert created.encode_as == WebhooksIntegrationEncoding.JSON

    got = hooks.get_webhooks_integration(webhook_name="ops")
    assert got.to_dict() == created.to_dict()

    # Partial update with a rename: the other fields are kept.
    updated = hooks.update_webhooks_integration(
        webhook_name="ops",
        body=WebhooksIntegrationUpdateRequest(name="ops-renamed", encode_as=WebhooksIntegrationEncoding.FORM),
    )
    assert (updated.name, updated.url, updated.payload, updated.custom_headers) == (
        "ops-renamed", created.url, PAYLOAD, HEADERS)
    assert updated.encode_as == WebhooksIntegrationEncoding.FORM
    with pytest.raises(ApiException) as e:
        hooks.get_webhooks_integration(webhook_name="ops")
    assert e.value.status == 404 and error_text(e.value) == "webhook ops not found"
    assert hooks.get_webhooks_integration(webhook_name="ops-renamed").encode_as == WebhooksIntegrationEncoding.FORM

    # Delete, then 404 for get and for a second delete.
    assert hooks.delete_webhooks_integration(webhook_name="ops-renamed") is None
    for call in (hooks.get_webhooks_integration, hooks.delete_webhooks_integration):
        with pytest.raises(ApiException) as e:
            call(webhook_name="ops-renamed")
        assert e.value.status == 404, call
        assert error_text(e.value) == "webhook ops-renamed not found"


def test_webhook_errors(server, api):
    hooks = WebhooksIntegrationApi(api)
    hooks.create_webhooks_integration(body=WebhooksIntegration(name="a", url="http://127.0.0.1:9/a"))
    hooks.create_webhooks_integration(body=WebhooksIntegration(name="b", url="http://127.0.0.1:9/b"))

    cases = [
        (WebhooksIntegration(name="a", url="http://other/"), "webhook a already exists"),
        (WebhooksIntegration(name="c", url="not a url"), "invalid url"),
        (WebhooksIntegration(name="c", url="ftp://example.com/"), "scheme must be http or https"),
        (WebhooksIntegration(name="c", url="http:///path"), "host is missing"),
        (WebhooksIntegration(name="bad name", url="http://h/"), "invalid name"),
        (WebhooksIntegration(name="c", url="http://h/", payload='{"a": 1,'), "payload is not a JSON template"),
        (WebhooksIntegration(name="c", url="http://h/", custom_headers='["x"]'), "custom_headers is not a JSON object"),
        (WebhooksIntegration(name="c", url="http://h/", custom_headers='{"X": 1}'), "must be a string"),
    ]
    for body, want in cases:
        with pytest.raises(ApiException) as e:
            hooks.create_webhooks_integration(body=body)
        assert e.value.status == 400, body
        assert want in error_text(e.value), (body, error_text(e.value))

    # Renaming onto another webhook and updating with an invalid url are refused and change nothing.
    for body, want in [
        (WebhooksIntegrationUpdateRequest(name="b"), "webhook b already exists"),
        (WebhooksIntegrationUpdateRequest(url="https://"), "host is missing"),
    ]:
        with pytest.raises(ApiException) as e:
            hooks.update_webhooks_integration(webhook_name="a", body=body)
        assert e.value.status == 400 and want in error_text(e.value)
    assert hooks.get_webhooks_integration(webhook_name="a").url == "http://127.0.0.1:9/a"
    with pytest.raises(ApiException) as e:
        hooks.update_webhooks_integration(webhook_name="zz", body=WebhooksIntegrationUpdateRequest(url="http://h/"))
    assert e.value.status == 404

    # Raw requests: a bad encoding and a body that is not JSON.
    r = requests.post(server.http + PATH, json={"name": "c", "url": "http://h/", "encode_as": "xml"}, timeout=10)
    assert r.status_code == 400 and "encode_as" in r.json()["errors"][0]
    r = requests.post(server.http + PATH, data="{", headers={"content-type": "application/json"}, timeout=10)
    assert r.status_code == 400 and "not valid JSON" in r.json()["errors"][0]
    r = requests.delete(server.http + PATH + "/b", timeout=10)
    assert r.status_code == 200 and r.content == b""


def test_webhooks_survive_restart(make_server):
    server = make_server().start()
    with api_client(server) as c:
        hooks = WebhooksIntegrationApi(c)
        hooks.create_webhooks_integration(
            body=WebhooksIntegration(name="keep", url="https://example.com/k", payload=PAYLOAD,
                                     custom_headers=HEADERS, encode_as=WebhooksIntegrationEncoding.FORM))
        hooks.create_webhooks_integration(body=WebhooksIntegration(name="gone", url="https://example.com/g"))
        hooks.create_webhooks_integration(body=WebhooksIntegration(name="old", url="https://example.com/o"))
        hooks.delete_webhooks_integration(webhook_name="gone")
        hooks.update_webhooks_integration(webhook_name="old", body=WebhooksIntegrationUpdateRequest(name="new"))
    server.restart()
    with api_client(server) as c:
        hooks = WebhooksIntegrationApi(c)
        kept = hooks.get_webhooks_integration(webhook_name="keep")
        assert (kept.url, kept.payload, kept.custom_headers, kept.encode_as) == (
            "https://example.com/k", PAYLOAD, HEADERS, WebhooksIntegrationEncoding.FORM)
        assert hooks.get_webhooks_integration(webhook_name="new").url == "https://example.com/o"
        for name in ("gone", "old"):
            with pytest.raises(ApiException) as e:
                hooks.get_webhooks_integration(webhook_name=name)
            assert e.value.status == 404
    assert (server.data_dir / "webhooks" / "webhooks.json").exists()
