"""The notebook layer's views of a flow, registered into the flows layer's presenter hook
(issue 15 item 1), and the runs-over-time chart of ``%d365 flow status`` (issue 14 item 6):
stacked SVG bars per time bucket coloured by outcome, a sparkline in text/plain. The same view
in a real kernel is checked on ``notebooks/lead_to_task.ipynb``'s runs
(``tests/support/notebook_checks.py``)."""

from __future__ import annotations

from d365nb.flows import Flow, views
from d365nb.notebook import flow_chart, flow_views
from d365nb.notebook.forms.flowview import STATUS_COLOURS
from tests.support.waiting import wait_for


def make(conn, history, name="fv") -> Flow:
    return Flow(name, conn, history=history).on_created("leads", every="1s")


def test_runs_are_counted_per_aligned_bucket_by_outcome():
    buckets = flow_chart.bucket_runs(
        [
            ("2026-12-04T18:03:09+00:00", "Running"),
            ("2026-12-04T18:03:05+00:00", "TimedOut"),
            ("2026-12-04T18:00:59.900000+00:00", "Succeeded"),
            ("2026-12-04T18:00:05+00:00", "Succeeded"),
            (None, "Queued"),  # no time yet: not drawn
        ]
    )
    assert (buckets.width, buckets.bucket_time(0)) == (60, "2026-12-04 18:00:00")
    assert buckets.counts == [{"Succeeded": 2}, {}, {}, {"Failed": 1, "Running": 1}]
    assert flow_chart.sparkline(buckets) == (
        "runs per 1 min: █  █ (Succeeded 2, Failed 1, Running 1)"
    )
    assert flow_chart.bucket_runs([]) is None and flow_chart.sparkline(None) == ""


def test_a_long_history_gets_wider_buckets_and_at_most_24():
    days = [(f"2026-11-{d:02d}T12:00:00+00:00", "Succeeded") for d in range(1, 21)]
    buckets = flow_chart.bucket_runs(days)
    assert buckets.label == "1 day" and len(buckets.counts) == 20
    assert all(c == {"Succeeded": 1} for c in buckets.counts)
    year = [(f"2025-{m:02d}-01T00:00:00+00:00", "Failed") for m in range(1, 13)] * 3
    assert len(flow_chart.bucket_runs(year).counts) <= flow_chart.MAX_BUCKETS


def test_the_chart_stacks_bars_in_the_forms_colours():
    buckets = flow_chart.bucket_runs(
        [("2026-12-04T18:00:01+00:00", "Succeeded")] * 3 + [("2026-12-04T18:00:02", "Failed")]
    )
    svg = flow_chart.chart_svg(buckets)
    ok, failed = STATUS_COLOURS["Succeeded"][1], STATUS_COLOURS["Failed"][1]
    assert f"fill='{ok}' data-group='Succeeded' data-count='3'" in svg
    assert f"fill='{failed}' data-group='Failed' data-count='1'" in svg
    assert "<title>2026-12-04 18:00:00 (+1 min): Succeeded 3, Failed 1</title>" in svg
    assert "matplotlib" not in svg and "no runs yet" in flow_chart.chart_svg(None)


def test_importing_the_package_registers_the_notebook_views():
    """A Python-API user gets the rich views: ``d365nb/__init__`` registers them lazily."""
    assert views.presenter("run_html") is flow_views.run_html
    assert views.presenter("status") is flow_views.status_bundle


def test_flow_status_shows_its_runs_over_time_beside_the_table(conn, history):
    flow = make(conn, history)
    flow.step("s", "assert trigger['subject'] != 'bad', 'bad lead'\n1")
    conn.create("leads", {"subject": "before"})  # not new once started
    flow.start()
    wait_for(lambda: flow.state == "Running")
    conn.create("leads", {"subject": "good"})
    conn.create("leads", {"subject": "bad"})
    flow.poll_now()
    wait_for(lambda: sum(flow.history.counts("fv").get(s, 0) for s in ("Succeeded", "Failed")) == 2)
    flow.stop()
    bundle = flow.status()._repr_mimebundle_()
    page = bundle["text/html"]
    assert page.startswith("<div><b>flow fv</b>")
    assert page.index("<table>") < page.index("<svg class='d365nb-runs-chart'")
    assert "data-group='Succeeded' data-count='1'" in page
    assert "data-group='Failed' data-count='1'" in page
    assert ">Stopped<" in page
    spark = bundle["text/plain"].splitlines()[-1]
    assert spark.startswith("runs per 1 min: ") and spark.endswith("(Succeeded 1, Failed 1)")


def test_the_live_widget_follows_the_engine_and_ends_stopped(conn, history):
    flow = make(conn, history, "fl").step("s", "1")
    view = flow.status()
    widget = flow_views.live_status_widget(view)  # what a kernel with widgets displays
    assert ">Stopped<" in widget.value and "no runs yet" in widget.value
    flow.start()
    wait_for(lambda: ">Running<" in widget.value, what="the widget to show Running")
    conn.create("leads", {})
    flow.poll_now()
    wait_for(lambda: "data-group='Succeeded' data-count='1'" in widget.value, what="a bar")
    flow.stop()
    assert ">Stopped<" in widget.value and ">Running<" not in widget.value


def test_a_run_is_shown_with_the_forms_colours(conn, history):
    flow = make(conn, history, "fr").step("s", "raise ValueError('nope')")
    conn.create("leads", {})
    run = flow.test()
    page = run._repr_html_()
    assert f'color:{STATUS_COLOURS["Failed"][1]};font-weight:600">Failed</span>' in page
    assert "nope" in page
