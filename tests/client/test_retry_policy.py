"""Backoff, Retry-After and error mapping of the HTTP layer (no network)."""

import random

import httpx
import pytest

from d365nb.client.errors import (
    BadRequest,
    ChangeTokenExpired,
    D365Error,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ServerError,
    Throttled,
    Unauthorized,
    error_for_status,
)
from d365nb.client.http import ApiRequest, error_from_response, parse_retry_after
from d365nb.client.retry import RetryPolicy


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    policy = RetryPolicy(interval=0.5, maximum=4.0, rng=random.Random(1))
    delays = [policy.delay(n + 1, None) for n in range(6)]
    for n, delay in enumerate(delays):
        cap = min(4.0, 0.5 * 2**n)
        assert cap / 2 <= delay <= cap
    assert len({round(d, 6) for d in delays}) == len(delays)  # jittered


def test_retry_after_wins_over_backoff():
    policy = RetryPolicy(rng=random.Random(1))
    assert 3.0 <= policy.delay(1, 3.0) <= 3.05
    assert policy.delay(1, 10_000) <= policy.max_retry_after + 0.05


def test_retry_after_parses_seconds_and_http_dates():
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0
    assert parse_retry_after("soon") is None


def test_idempotency_defaults_by_method():
    assert ApiRequest("GET", "x").is_idempotent
    assert ApiRequest("PATCH", "x").is_idempotent
    assert not ApiRequest("POST", "x").is_idempotent
    assert ApiRequest("POST", "x", idempotent=True).is_idempotent


def _response(status, body=b"", headers=None):
    request = httpx.Request("GET", "https://org.crm.dynamics.com/api/data/v9.2/leads?$filter=x")
    return httpx.Response(status, content=body, headers=headers or {}, request=request)


def test_error_carries_service_code_message_and_request_id():
    err = error_from_response(
        _response(
            404,
            b'{"error":{"code":"0x80040217","message":"lead With Id = 1 Does Not Exist"}}',
            {"x-ms-service-request-id": "abc-123"},
        ),
        ApiRequest("GET", "leads"),
    )
    assert isinstance(err, NotFound)
    assert (err.status, err.code, err.request_id) == (404, "0x80040217", "abc-123")
    text = str(err)
    assert "lead With Id = 1 Does Not Exist" in text and "abc-123" in text
    assert "\n" not in text and "$filter" not in text  # one line, no query string


def test_throttled_error_is_transient_with_retry_after():
    err = error_from_response(_response(429, b"", {"Retry-After": "7"}), ApiRequest("GET", "x"))
    assert isinstance(err, Throttled) and err.is_transient and err.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "cls", "transient"),
    [
        (400, BadRequest, False),
        (401, Unauthorized, False),
        (403, Forbidden, False),
        (404, NotFound, False),
        (408, D365Error, True),
        (412, PreconditionFailed, False),
        (429, Throttled, True),
        (500, ServerError, False),
        (502, ServerError, True),
        (503, ServerError, True),
        (504, ServerError, True),
    ],
)
def test_status_maps_to_a_typed_error(status, cls, transient):
    err = error_for_status(status, "boom")
    assert type(err) is cls and err.is_transient is transient


def test_expired_version_stamp_is_recognisable():
    err = error_for_status(
        400, "Version stamp associated with the client has expired.", code="0x80044352"
    )
    assert isinstance(err, ChangeTokenExpired) and isinstance(err, BadRequest)
    assert "without a token" in str(err)


def test_multiline_service_messages_become_one_line():
    err = error_for_status(400, "line one\r\n  line two")
    assert str(err).startswith("line one line two")
