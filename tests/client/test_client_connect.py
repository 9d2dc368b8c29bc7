"""Connecting: embedded sandbox, URL + token, TLS verification, registry, pooling, secrets."""

import asyncio
import logging

import httpx
import pytest

import d365nb
from d365nb import sandbox as sandbox_module
from d365nb.client.api import AsyncDataverse, Dataverse, connect
from d365nb.client.errors import TransportError, Unauthorized, ValidationError
from d365nb.client.registry import connections


def test_connect_sandbox_starts_one_and_close_stops_it():
    conn = d365nb.connect("sandbox")
    try:
        handle = conn.sandbox
        assert handle.running and conn.alias.startswith("sandbox")
        assert connections.current is conn
        assert len(conn.list("leads", select="subject", top=5)) == 5  # demo data
    finally:
        conn.close()
    assert not handle.running
    assert conn.alias not in connections


def test_connect_with_a_token_callable(empty_sandbox):
    calls = []

    def token():
        calls.append(1)
        return empty_sandbox.token

    with connect(empty_sandbox.url, token=token, alias="cb") as conn:
        assert conn.whoami()["UserId"] and calls
        assert connections.current is conn
        assert conn.api_url == empty_sandbox.api


def test_connect_accepts_the_api_url_too(empty_sandbox):
    with Dataverse(empty_sandbox.api, token=empty_sandbox.token) as conn:
        assert conn.api_url == empty_sandbox.api and conn.whoami()


def test_tls_sandbox_needs_its_ca_and_works_with_it():
    with sandbox_module.start(data="empty", tls=True) as handle:
        with Dataverse(handle.url, token=handle.token, verify=handle.ca) as conn:
            assert conn.whoami()["UserId"]
        with (
            Dataverse(handle.url, token=handle.token) as conn,
            pytest.raises(TransportError) as info,
        ):
            conn.whoami()
        assert "verify=" in str(info.value)


def test_one_pool_reuses_connections(empty_sandbox):
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        for _ in range(5):
            conn.whoami()
        pool = conn._session.client._transport._pool
        assert len(pool.connections) == 1  # keep-alive: five requests, one socket


def test_bad_urls_and_arguments_are_refused():
    with pytest.raises(ValidationError):
        Dataverse("contoso", token="x")
    with pytest.raises(ValidationError):
        Dataverse("https://contoso.crm.dynamics.com", token="x", auth="device_code")
    with pytest.raises(ValidationError, match="unknown auth"):
        Dataverse("https://contoso.crm.dynamics.com", auth="password")


def test_tokens_never_reach_messages_reprs_or_logs(empty_sandbox, caplog):
    secret = "tok-" + "9" * 40
    caplog.set_level(logging.DEBUG)
    with Dataverse(empty_sandbox.url, token=secret) as conn:
        with pytest.raises(Unauthorized) as info:
            conn.whoami()
        texts = [
            str(info.value),
            repr(info.value),
            repr(conn),
            repr(conn.tokens),
            repr(conn._session.client.headers),
            caplog.text,
        ]
    assert all(secret not in t for t in texts)
    assert "WhoAmI" in caplog.text  # the request was logged, without its headers


def test_async_and_sync_share_one_governor_when_derived(empty_sandbox):
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        twin = conn.aio()
        assert isinstance(twin, AsyncDataverse)
        assert twin.governor is conn.governor and twin.metadata is conn.metadata
        assert twin.tokens is conn.tokens
        asyncio.run(twin.aclose())


def test_requests_carry_the_wire_contract_headers(empty_sandbox):
    seen: list[httpx.Request] = []
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        conn._session.client.event_hooks["request"].append(seen.append)  # the real requests
        task_id = conn.create("tasks", {"subject": "headers"})
        conn.update("tasks", task_id, {"subject": "headers 2"})
        conn.get("tasks", task_id)
    by_method = {r.method: r.headers for r in seen}
    for headers in by_method.values():
        assert headers["Accept"] == "application/json"
        assert headers["OData-MaxVersion"] == "4.0" and headers["OData-Version"] == "4.0"
        assert headers["Authorization"] == f"Bearer {empty_sandbox.token}"
    assert by_method["GET"]["If-None-Match"] == "null"  # no cached expanded collections
    assert by_method["GET"]["Prefer"] == 'odata.include-annotations="*"'
    assert by_method["POST"]["Content-Type"] == "application/json"
    assert "If-None-Match" not in by_method["POST"]
    assert by_method["PATCH"]["If-Match"] == "*"  # an update never creates


def test_more_than_52_concurrent_requests_are_refused_up_front():
    with pytest.raises(ValidationError, match="max_concurrency must be 1..52"):
        Dataverse("https://contoso.crm.dynamics.com", token="x", max_concurrency=53)
