"""The engine, runner and history on a real sandbox served in-process (``conn``: an empty org
over ``httpx.ASGITransport``, no socket): scheduling, order, failures, retries, timeouts,
concurrency, output routing, loop guard, resume, bad input."""

from __future__ import annotations

import threading

import pytest

from d365nb.client.errors import error_for_status
from d365nb.flows import Flow, FlowError, RetryPolicy, flows, get_flow
from d365nb.flows.history import History
from tests.support.waiting import wait_for

FAST = RetryPolicy(type="exponential", count=4, interval=0.01)


def http_error(status: int, retry_after: float | None = None) -> Exception:
    """The client's error for an HTTP failure, as a step calling the service would see it."""
    return error_for_status(status, f"service said {status}", retry_after=retry_after)


def finished(flow: Flow, n: int) -> bool:
    runs = flow.runs()
    return len(runs[runs.status.isin(["Succeeded", "Failed"])]) >= n


def make(conn, history, name="f", **kw) -> Flow:
    return Flow(name, conn, history=history, **kw).on_created("leads", every="1s")


def test_each_new_record_gives_one_run_with_steps_in_order(conn, history):
    conn.create("leads", {"subject": "old"})  # before the start: not a new record
    seen = []
    flow = make(conn, history)
    flow.step(
        "first",
        "seen.append(('first', trigger['subject']))\ntrigger['subject'].upper()",
        namespace={"seen": seen},
    )
    flow.step("second", "seen.append(('second', steps['first']))\n'done'", namespace={"seen": seen})
    flow.start()
    wait_for(lambda: flow.state == "Running")
    ids = [conn.create("leads", {"subject": f"s{i}"}) for i in range(3)]
    flow.poll_now()
    wait_for(lambda: finished(flow, 3))
    runs = flow.runs()
    assert sorted(runs.record_id) == sorted(ids)
    assert set(runs.status) == {"Succeeded"}
    assert seen == [
        ("first", "s0"),
        ("second", "S0"),
        ("first", "s1"),
        ("second", "S1"),
        ("first", "s2"),
        ("second", "S2"),
    ]
    detail = flow.run(runs.run_id.iloc[0])
    assert [s["name"] for s in detail.steps] == ["first", "second"]
    assert detail.step("second")["outputs"] == "done"


def test_failed_step_fails_the_run_skips_the_rest_and_polling_goes_on(conn, history):
    flow = make(conn, history)
    flow.step("check", "if trigger['subject'] == 'bad': raise ValueError('no good')\n1")
    flow.step("after", "2")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {"subject": "bad"})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    conn.create("leads", {"subject": "fine"})
    flow.poll_now()
    wait_for(lambda: finished(flow, 2))
    runs = flow.runs().set_index("status")
    failed = flow.run(runs.loc["Failed", "run_id"])
    assert failed.step("check")["status"] == "Failed"
    assert "no good" in failed.step("check")["error"] and "line 1" in failed.step("check")["error"]
    assert failed.step("after")["status"] == "Skipped"
    assert "Succeeded" in runs.index


def test_transient_errors_are_retried_and_others_are_not(conn, history):
    calls = {"transient": 0, "hard": 0}

    def flaky(trigger, run):
        calls["transient"] += 1
        if calls["transient"] < 3:
            raise http_error(503, 0.01)
        return run.attempt

    def hard(trigger):
        calls["hard"] += 1
        raise http_error(400)

    flow = make(conn, history)
    flow.step("flaky", flaky, retry=FAST).step("hard", hard, retry=FAST)
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {"subject": "x"})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    run = flow.run(flow.runs().run_id.iloc[0])
    assert run.step("flaky")["status"] == "Succeeded" and run.step("flaky")["attempts"] == 3
    assert run.step("hard")["attempts"] == 1 and calls["hard"] == 1
    assert run.status == "Failed"


def test_the_default_retry_waits_what_retry_after_says(conn, history):
    calls = []

    def throttled(trigger):
        calls.append(1)
        if len(calls) == 1:
            raise http_error(429, 0.05)
        return "ok"

    flow = make(conn, history).step("s", throttled)  # default policy: 7 s, unless told
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1), timeout=5, what="the retry after 0.05 s, not 7 s")
    step = flow.run(flow.runs().run_id.iloc[0]).step("s")
    assert (step["status"], step["attempts"]) == ("Succeeded", 2)
    assert "[retry 1] service said 429 (HTTP 429); waiting 0.05s" in step["log"]


def test_retry_gives_up_after_the_policy_count(conn, history):
    def always(trigger):
        raise http_error(429, 0)

    flow = make(conn, history).step("s", always, retry=RetryPolicy(count=2, interval=0.001))
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    step = flow.run(flow.runs().run_id.iloc[0]).step("s")
    assert (step["status"], step["attempts"]) == ("Failed", 3)


def test_step_timeout_fails_the_step(conn, history):
    release = threading.Event()
    flow = make(conn, history).step("slow", lambda: release.wait(10), timeout=0.2)
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    release.set()
    step = flow.run(flow.runs().run_id.iloc[0]).step("slow")
    assert step["status"] == "TimedOut" and "timed out" in step["error"]


def test_a_timed_out_step_that_runs_on_cannot_write_any_more(conn, history):
    release = threading.Event()
    late: list[BaseException] = []

    def slow(d365):
        release.wait(10)
        try:
            d365.create("tasks", {"subject": "too late"})
        except BaseException as err:  # noqa: BLE001 - recorded for the assertion
            late.append(err)

    flow = make(conn, history).step("slow", slow, timeout=0.2)
    flow.start()
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    release.set()  # the abandoned thread carries on...
    wait_for(lambda: late, what="the late write to be refused")
    assert "late writes are refused" in str(late[0]) and conn.list("tasks").empty


@pytest.mark.parametrize("concurrency", [1, 3])
def test_concurrency_caps_runs_in_parallel(conn, history, concurrency):
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}
    gate = threading.Event()

    def step():
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        gate.wait(0.05)
        with lock:
            state["now"] -= 1

    flow = make(conn, history, concurrency=concurrency).step("s", step)
    for _ in range(8):
        conn.create("leads", {})
    flow.on_created("leads", every="1s", since="beginning")
    flow.start()
    wait_for(lambda: finished(flow, 8))
    assert state["peak"] == concurrency


def test_flows_keep_running_while_the_calling_thread_blocks(conn, history):
    done = threading.Event()
    flow = make(conn, history).step("s", lambda: done.set())
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {})
    # The "cell" blocks without polling anything; the engine thread does the work.
    assert done.wait(10)


def test_step_prints_go_to_the_run_not_to_the_running_cell(conn, history, capsys):
    flow = make(conn, history).step("s", "print('hello from the flow')\n1")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    print("cell output")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    print("more cell output")
    out = capsys.readouterr().out
    assert "hello from the flow" not in out
    assert "cell output" in out and "more cell output" in out
    assert flow.run(flow.runs().run_id.iloc[0]).step("s")["log"] == "hello from the flow\n"


@pytest.mark.slow
def test_a_flow_does_not_trigger_itself_unless_asked(conn, history):
    for self_trigger, expected_runs in ((False, 1), (True, 3)):

        def step(trigger, d365):
            generation = int(trigger["subject"][1:])
            if generation < 2:
                d365.create("leads", {"subject": f"g{generation + 1}"})

        flow = Flow(f"loop{self_trigger}", conn, history=history, self_trigger=self_trigger)
        flow.on_created("leads", every="1s").step("s", step).start()
        wait_for(lambda flow=flow: flow.state == "Running")
        conn.create("leads", {"subject": "g0"})
        wait_for(lambda flow=flow, n=expected_runs: finished(flow, n), what=f"{expected_runs} runs")
        flow.poll_now()
        wait_for(lambda flow=flow: flow._watcher().polls >= 3)
        assert len(flow.runs()) == expected_runs
        flow.stop()


def test_stopped_flow_resumes_from_its_watermark(conn, history):
    flow = make(conn, history).step("s", "1")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    flow.stop()
    missed = [conn.create("leads", {}) for _ in range(3)]  # while stopped
    flow.start()
    wait_for(lambda: finished(flow, 3))
    assert sorted(flow.runs().record_id) == sorted(missed)


def test_resubmit_after_fixing_the_step_succeeds(conn, history):
    flow = make(conn, history).step("s", "raise RuntimeError('bug')")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {"subject": "x"})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    failed_id = flow.runs().run_id.iloc[0]
    assert flow.run(failed_id).status == "Failed"
    flow.step("s", "trigger['subject'] + '!'")  # the fix
    again = flow.resubmit(failed_id)
    assert again.status == "Succeeded" and again.step("s")["outputs"] == "x!"
    assert again["resubmit_of"] == failed_id


def test_history_survives_a_new_process_view(conn, history, tmp_path):
    flow = make(conn, history).step("s", "1")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: finished(flow, 1))
    other = History(history.path)
    assert [r["status"] for r in other.runs("f")] == ["Succeeded"]
    assert other.checkpoint("f")["position"] is not None


def test_runs_left_in_flight_by_a_stop_run_again_on_start(conn, history):
    gate = threading.Event()
    executed = []

    def step(trigger, run):
        executed.append((trigger["leadid"], run.attempt, run.key))
        gate.wait(10)

    flow = make(conn, history).step("s", step)
    flow.start()
    wait_for(lambda: flow.state == "Running")
    lead = conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: executed)
    assert flow.runs().status.tolist() == ["Running"]  # visible while it executes
    flow.stop()  # the run is in flight
    gate.set()
    assert flow.runs().status.tolist() == ["Running"]  # unfinished: owed on the next start
    flow.start()
    wait_for(lambda: finished(flow, 1))
    key = f"{lead}:created"
    assert executed == [(lead, 1, key), (lead, 2, key)]  # the same run, executed a second time
    runs = flow.runs()
    assert len(runs) == 1 and runs.attempts.tolist() == [2]


def test_bad_input_is_a_clear_error_and_starts_nothing(conn, history):
    with pytest.raises(FlowError, match="no steps"):
        make(conn, history, "nosteps").start()
    with pytest.raises(FlowError, match="no trigger"):
        Flow("notrigger", conn, history=history).step("s", "1").start()
    with pytest.raises(LookupError, match="no table named 'nope'"):
        Flow("t", conn, history=history).on_created("nope", every="1s")
    with pytest.raises(FlowError, match="no change tracking"):
        Flow("d", conn, history=history).on_deleted("tasks", every="1s")
    with pytest.raises(FlowError, match="bad interval"):
        Flow("i", conn, history=history).on_created("leads", every="0s")
    with pytest.raises(FlowError, match="unknown flow 'ghost'"):
        get_flow("ghost")
    assert not any(f.running for f in [get_flow("nosteps"), get_flow("notrigger")])


def test_pause_stops_polling_and_resume_picks_up_what_came_meanwhile(conn, history):
    flow = make(conn, history).step("s", "display('shown')\n1")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    flow.pause()
    wait_for(lambda: flow.state == "Paused")
    watcher = flow._watcher()
    # A poll already under way when pause() came still finishes (and may find what it finds):
    # wait for the loop to go round once after the pause before counting.
    due = watcher.next_poll
    flow.poll_now()
    wait_for(lambda: watcher.next_poll != due, what="the poll under way to end")
    polls, due = watcher.polls, watcher.next_poll
    conn.create("leads", {})
    flow.poll_now()  # a paused flow wakes up but does not check its trigger
    wait_for(lambda: watcher.next_poll != due, what="the loop to go round once, paused")
    assert flow._watcher().polls == polls and len(flow.runs()) == 0
    flow.resume()
    wait_for(lambda: finished(flow, 1))
    assert flow.run(flow.runs().run_id.iloc[0]).step("s")["log"] == "shown\n"


def test_a_redefined_trigger_starts_afresh_but_the_same_one_resumes(conn, history):
    flow = make(conn, history).step("s", "1")
    flow.start()
    wait_for(lambda: flow.state == "Running")
    flow.stop()
    saved = history.checkpoint("f")
    make(conn, history).step("s", "1")  # the same trigger cell run again
    assert flow.detector().fits(saved)
    changed = Flow("f", conn, history=history).on_created("leads", every="1s", since="beginning")
    assert not changed.detector().fits(saved)


def test_the_status_view_tells_its_listeners_what_the_engine_does(conn, history):
    """Plain data and a hook: the notebook layer's live widget is one such listener."""
    flow = make(conn, history).step("s", "1")
    view = flow.status()
    seen: list[str] = []
    view.add_listener(lambda v: seen.append(repr(v)))
    assert ": Stopped," in repr(view)
    flow.start()
    wait_for(lambda: any(": Running," in s for s in seen), what="a refresh showing Running")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: "succeeded 1," in seen[-1], what="a refresh counting the run")
    flow.stop()
    assert ": Stopped," in seen[-1]  # told at the stop, before stop() returns
    assert "application/vnd.jupyter.widget-view+json" not in view._repr_mimebundle_()


def test_a_stored_flow_can_be_loaded_and_resumes_its_history(conn, history):
    flow = Flow("stored", conn, history=history, concurrency=2).on_created("leads", every="1s")
    flow.step(
        "a",
        "trigger['subject'].upper()",
        when="trigger['subject']",
        retry="fixed:1s:2",
        timeout="5s",
    )
    flow.step("b", 'create tasks subject="{trigger[subject]}"')
    flow.start()
    wait_for(lambda: flow.state == "Running")
    flow.stop()
    conn.create("leads", {"subject": "while stopped"})
    loaded = Flow.load("stored", conn, history=history)
    assert loaded is not flow and loaded.concurrency == 2
    assert [(s.name, s.kind, s.retry.type, s.timeout) for s in loaded.steps] == [
        ("a", "python", "fixed", 5.0),
        ("b", "declarative", "exponential", None),
    ]
    loaded.start()
    wait_for(lambda: finished(loaded, 1))
    run = loaded.run(loaded.runs().run_id.iloc[0])
    assert run.step("a")["outputs"] == "WHILE STOPPED"


def test_the_flow_output_area_merges_writes_and_keeps_a_bounded_tail():
    from d365nb.flows.output import FlowOutput

    area = FlowOutput("f")
    shown: list[tuple] = []
    area.add_listener(shown.append)  # what the notebook layer's Output widget does
    area.write("a")
    area.write("b\n")
    area.write("oops\n", "stderr")
    assert [o.get("text") for o in shown[-1]] == ["ab\n", "oops\n"]
    for n in range(FlowOutput.KEEP * 2):
        area.display(n)
    outputs = shown[-1]
    assert len(outputs) == FlowOutput.KEEP and area.outputs == outputs
    assert outputs[-1]["data"]["text/plain"] == str(FlowOutput.KEEP * 2 - 1)


def test_a_flow_that_cannot_be_loaded_leaves_its_stored_definition_alone(conn, history):
    flow = Flow("mixed", conn, history=history).on_created("leads", every="1s")
    flow.step("a", "1").step("b", lambda: 2).step("c", "3")
    stored = history.flow_definition("mixed")
    flows_before = dict(flows)
    with pytest.raises(FlowError, match="step 'b' of flow 'mixed' is a Python callable"):
        Flow.load("mixed", conn, history=history)
    assert history.flow_definition("mixed") == stored
    assert get_flow("mixed") is flows_before["mixed"]


def test_a_test_run_cut_off_by_a_crash_is_closed_as_cancelled(conn, history):
    from d365nb.flows.history import Change

    flow = make(conn, history).step("s", "1")
    # What a killed kernel leaves behind: a test run marked Running that nobody executes.
    row = history.add_run("f", Change("x", "x:test", "created", {"leadid": "x"}), "test")
    history.mark_started(row.run_id)
    flow.start()
    run = flow.run(row.run_id)
    assert (run.status, run.error) == ("Cancelled", "interrupted: the process running it stopped")
