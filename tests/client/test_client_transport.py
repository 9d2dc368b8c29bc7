"""``connect(..., transport=)``: any httpx transport carries the client's requests - an ASGI app
in-process (async-only, served to the blocking facade from one private loop), httpx's blocking
network transport (awaited from ``aio()`` in a worker thread) - and anything else is refused
with one line before a request is sent."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

import d365nb
from d365nb.client.api import AsyncDataverse, Dataverse
from d365nb.client.errors import ValidationError
from d365nb.client.registry import connections
from tests.support.sandboxes import inprocess


def stored_subject(sandbox, lead_id: str) -> str | None:
    """What the organisation itself holds (the store, not the API the client talks to)."""
    row = sandbox.org.store.get("lead", lead_id)
    return None if row is None else row["subject"]


def test_an_asgi_app_serves_the_blocking_client_in_process(inprocess_sandbox):
    # sandbox.test does not resolve: only the in-process transport can answer.
    with inprocess_sandbox.connect() as conn:
        lead_id = conn.create("leads", {"subject": "in process", "lastname": "Doe"})
        assert conn.get("leads", lead_id, select="subject")["subject"] == "in process"
        assert list(conn.list("leads", select="subject").subject) == ["in process"]
        assert conn.requests_sent >= 3
    assert stored_subject(inprocess_sandbox, lead_id) == "in process"


def test_aio_awaits_the_same_app_on_the_same_loop(inprocess_sandbox):
    with inprocess_sandbox.connect() as conn:
        first = conn.create("leads", {"subject": "sync", "lastname": "Doe"})

        async def from_asyncio() -> tuple[str, list[str]]:
            aconn = conn.aio()
            try:
                created = await aconn.create("leads", {"subject": "async", "lastname": "Doe"})
                frame = await aconn.list("leads", select="subject")
                return created, sorted(frame.subject)
            finally:
                await aconn.aclose()

        second, subjects = asyncio.run(from_asyncio())
        assert subjects == ["async", "sync"]
        # Closing the aio() connection left the blocking one's transport open.
        assert conn.get("leads", second, select="subject")["subject"] == "async"
    assert {stored_subject(inprocess_sandbox, i) for i in (first, second)} == {"sync", "async"}


def test_concurrent_blocking_callers_share_the_app(inprocess_sandbox):
    with inprocess_sandbox.connect() as conn, ThreadPoolExecutor(8) as pool:
        subjects = [f"t{n}" for n in range(8)]
        ids = list(pool.map(lambda s: conn.create("leads", {"subject": s}), subjects))
        assert len(set(ids)) == 8
        assert sorted(conn.list("leads", select="subject").subject) == subjects


def test_the_async_facade_takes_an_asgi_transport_directly():
    with inprocess() as sandbox:

        async def run() -> list[str]:
            async with AsyncDataverse(
                sandbox.url, token=sandbox.token, transport=sandbox.transport()
            ) as aconn:
                await aconn.create("leads", {"subject": "direct", "lastname": "Doe"})
                return list((await aconn.list("leads", select="subject")).subject)

        assert asyncio.run(run()) == ["direct"]


def test_a_blocking_network_transport_serves_both_facades(empty_sandbox):
    transport = httpx.HTTPTransport(retries=0)
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token, transport=transport) as conn:
        lead_id = conn.create("leads", {"subject": "over loopback", "lastname": "Doe"})

        async def read() -> str:
            aconn = conn.aio()
            try:
                return (await aconn.get("leads", lead_id, select="subject"))["subject"]
            finally:
                await aconn.aclose()

        assert asyncio.run(read()) == "over loopback"
        assert conn.get("leads", lead_id, select="subject")["subject"] == "over loopback"
    assert stored_subject(empty_sandbox, lead_id) == "over loopback"


def test_connect_registers_a_connection_with_a_transport(inprocess_sandbox):
    conn = d365nb.connect(
        inprocess_sandbox.url,
        token=inprocess_sandbox.token,
        alias="in-process",
        transport=inprocess_sandbox.transport(),
    )
    try:
        assert connections.get("in-process") is conn
        assert conn.whoami()["UserId"] == inprocess_sandbox.org.user_id
    finally:
        conn.close()
    assert connections.get("in-process") is None


@pytest.mark.parametrize("bad", ["http://sandbox.test", object(), httpx.Client])
def test_anything_but_a_transport_is_one_line_and_sends_nothing(inprocess_sandbox, bad):
    with pytest.raises(ValidationError) as err:
        Dataverse(inprocess_sandbox.url, token=inprocess_sandbox.token, transport=bad)
    message = str(err.value)
    assert "\n" not in message and message.startswith("transport: expected an httpx transport")
    assert inprocess_sandbox.token not in message
    assert inprocess_sandbox.org.store.count("lead") == 0
