"""One connection shared by the notebook thread, the flows engine's worker threads and an
asyncio twin (``conn.aio()``) on another thread's loop - as a kernel running flows does."""

import asyncio
import threading

from d365nb.client.api import Dataverse


def test_one_connection_serves_notebook_flow_threads_and_an_async_twin_at_once(empty_sandbox):
    with Dataverse(empty_sandbox.url, token=empty_sandbox.token) as conn:
        conn.metadata.table("tasks")  # loaded once up front, so the request count is exact
        before = conn.requests_sent
        start = threading.Barrier(5)
        created: dict[str, list[str]] = {}
        frames = []
        errors: list[BaseException] = []

        def flow_worker(n: int) -> None:  # like the engine's executor threads
            start.wait()
            created[f"flow{n}"] = [
                conn.create("tasks", {"subject": f"flow {n}-{i}"}) for i in range(20)
            ]

        def notebook() -> None:  # cells reading while flows write
            start.wait()
            frames.extend(conn.list("tasks", select="subject") for _ in range(10))

        def engine_loop() -> None:  # the flows engine's own event loop
            async def main() -> list[str]:
                twin = conn.aio()
                try:
                    start.wait()
                    return [
                        await twin.create("tasks", {"subject": f"async {i}"}) for i in range(20)
                    ]
                finally:
                    await twin.aclose()

            created["async"] = asyncio.run(main())

        def guarded(target, *args):
            try:
                target(*args)
            except BaseException as err:  # noqa: BLE001 - reported by the assertion below
                errors.append(err)

        threads = [threading.Thread(target=guarded, args=(flow_worker, n)) for n in range(3)]
        threads += [threading.Thread(target=guarded, args=(f,)) for f in (notebook, engine_loop)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == [] and not any(t.is_alive() for t in threads)
        ids = [i for batch in created.values() for i in batch]
        assert len(ids) == 80 and len(set(ids)) == 80
        final = conn.list("tasks", select="subject")
        assert set(final.index) == set(ids)
        assert all(f.index.isin(ids).all() for f in frames)  # reads never saw half a record
        # Every sync request counted exactly once (60 creates + 10 reads + the final read).
        assert conn.requests_sent - before == 71
        assert conn.governor.active == 0  # every slot taken was given back
