"""Under injected faults (503, 429 + Retry-After, dropped connections) results stay exact."""

import threading
import time

import pytest

from d365nb import sandbox as sandbox_module
from d365nb.client.api import Dataverse
from d365nb.client.retry import RetryPolicy

# retry_after=0: these tests prove exact results under faults, not patience (the Retry-After
# wait itself is checked by test_throttling_is_retried_after_retry_after_and_counted).
FAULTS = "503=0.1,429=0.1,drop=0.05,retry_after=0"


@pytest.fixture
def faulty():
    """An empty sandbox (faults switched on by each test once its data is in place)."""
    # Small backoff base: the test proves correctness, not patience (a dropped connection is
    # retried after the computed backoff; the default count of 10 retries is kept).
    retry = RetryPolicy(interval=0.005, maximum=0.05)
    with (
        sandbox_module.start(data="empty", seed=11) as handle,
        Dataverse(handle.url, token=handle.token, retry=retry) as conn,
    ):
        yield handle, conn


def count_tasks(conn) -> int:
    return sum(len(page) for page in conn.iter_pages("tasks", select="activityid"))


@pytest.mark.slow
def test_listing_20000_rows_under_faults_returns_exactly_those_rows(faulty):
    handle, conn = faulty
    created = conn.create_many("tasks", [{"subject": f"row {i}"} for i in range(20_000)])
    assert created.ok
    handle.set_faults(FAULTS, seed=5)
    frame = conn.list("tasks", select="subject", page_size=1000)
    injected = sum(handle.org.config["faults"].counts.values())
    handle.set_faults(None)
    assert injected > 0
    assert len(frame) == 20_000 and frame.index.is_unique
    assert set(frame.index) == set(created.ids)


@pytest.mark.slow
def test_create_many_5000_under_faults_creates_each_exactly_once(faulty):
    handle, conn = faulty
    handle.set_faults(FAULTS, seed=7)
    result = conn.create_many(
        "tasks", [{"subject": f"bulk {i}"} for i in range(5000)], chunk_size=250
    )
    injected = sum(handle.org.config["faults"].counts.values())
    handle.set_faults(None)
    assert injected > 0
    assert result.ok and result.succeeded == 5000
    frame = conn.list("tasks", select="subject")
    assert len(frame) == 5000 and frame["subject"].is_unique
    assert set(frame.index) == set(result.ids)


def test_single_creates_under_dropped_connections_create_each_record_once(faulty):
    handle, conn = faulty
    conn.metadata.table("tasks")
    handle.set_faults("drop=0.3", seed=3)
    ids = [conn.create("tasks", {"subject": f"single {i}"}) for i in range(150)]
    counts = dict(handle.org.config["faults"].counts)
    handle.set_faults(None)
    assert counts.get("drop_after", 0) > 0 and counts.get("drop_before", 0) > 0
    frame = conn.list("tasks", select="subject")
    assert len(frame) == 150 and set(frame.index) == set(ids)
    assert sorted(frame["subject"]) == sorted(f"single {i}" for i in range(150))


def test_throttling_is_retried_after_retry_after_and_counted(faulty):
    handle, conn = faulty
    handle.set_faults("429=0.5", seed=1)  # seed 1: the first try is throttled
    started = time.monotonic()
    conn.whoami()
    waited = time.monotonic() - started
    handle.set_faults(None)
    assert conn.governor.throttled > 0
    # Each 429 said Retry-After: 1 (the sandbox's default), and the client waited that long.
    assert waited >= conn.governor.throttled * 1.0, (waited, conn.governor.throttled)


def test_threads_sharing_a_connection_share_the_throttle_governor(faulty):
    handle, conn = faulty
    conn.metadata.table("tasks")
    handle.set_limits("requests=40,window=1")
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            for i in range(15):
                conn.create("tasks", {"subject": f"t{worker}-{i}"})
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    handle.set_limits(None)
    assert errors == []
    assert conn.governor.throttled > 0  # the limit was hit, absorbed, and adapted to
    assert conn.governor.limit < conn.governor.max_limit
    assert len(conn.list("tasks", select="subject")) == 120


def test_a_slow_service_times_out_and_retries_then_says_so_in_one_line(empty_sandbox):
    from d365nb.client.errors import TransportError

    retry = RetryPolicy(count=2, interval=0.01, maximum=0.02)
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token, timeout=0.3, retry=retry) as conn:
        conn.metadata.table("tasks")
        empty_sandbox.set_faults("latency=1")
        try:
            sent = conn.requests_sent
            with pytest.raises(TransportError) as info:
                conn.whoami()
        finally:
            empty_sandbox.set_faults(None)
        assert conn.requests_sent - sent == 3  # the first try and two retries
        text = str(info.value)
        assert "timeout" in text and "\n" not in text and info.value.is_transient
        assert conn.whoami()["UserId"]  # the connection is still usable afterwards
