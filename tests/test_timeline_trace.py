"""`Timeline` records every run and node attempt and exports Chrome trace-event JSON.

The export is checked against the Trace Event Format that Perfetto and `chrome://tracing`
read: a `traceEvents` list of complete events (`ph` "X", `ts`/`dur` in microseconds,
integer `pid`/`tid`, a `name`, an `args` dict) and metadata events naming the tracks,
with the complete events of one track nested or disjoint, never partly overlapping.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs._options import node_hook_calls
from ember_xcs.scheduling import NodeRecord


def check_trace_event_format(trace: dict) -> None:
    """Fail unless `trace` is valid trace-event JSON of the kinds the exporter emits."""
    json.dumps(trace, allow_nan=False)  # strict JSON
    assert isinstance(trace["traceEvents"], list)
    named_tracks = set()
    slices: dict[tuple[int, int], list[tuple[float, float]]] = {}
    for event in trace["traceEvents"]:
        assert event["ph"] in {"X", "M"}, event
        assert isinstance(event["name"], str) and event["name"], event
        assert type(event["pid"]) is int and type(event["tid"]) is int, event
        assert isinstance(event["args"], dict), event
        if event["ph"] == "M":
            assert event["name"] in {"process_name", "thread_name", "thread_sort_index"}
            if event["name"] == "thread_name":
                named_tracks.add((event["pid"], event["tid"]))
            continue
        assert isinstance(event["cat"], str)
        assert isinstance(event["ts"], int | float) and event["ts"] >= 0, event
        assert isinstance(event["dur"], int | float) and event["dur"] >= 0, event
        slices.setdefault((event["pid"], event["tid"]), []).append(
            (event["ts"], event["ts"] + event["dur"])
        )
    assert set(slices) <= named_tracks, "every track with slices is named"
    for track, spans in slices.items():
        open_ends: list[float] = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while open_ends and open_ends[-1] <= start:
                open_ends.pop()
            assert not open_ends or end <= open_ends[-1], f"partial overlap on track {track}"
            open_ends.append(end)


def node_events(trace: dict) -> list[dict]:
    return [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "node"]


@xcs.op
def answer(prompt: str, unit: int) -> str:
    return f"{prompt}:{unit}"


@xcs.op
def join(*answers: str) -> int:
    return len(answers)


def fan_in(width: int = 6) -> xcs.Graph:
    graph = xcs.Graph()
    graph.add_node(join, node_id="join")
    for i in range(width):
        graph.add_node(answer, node_id=f"u{i}")
        graph.add_edge(f"u{i}", "join")
    return graph


def test_chrome_trace_of_a_graph_run_follows_the_trace_event_format(tmp_path):
    timeline = xcs.Timeline()
    inputs = {"prompt": "q", **{f"u{i}": {"unit": i} for i in range(6)}}
    xcs.execute_graph(fan_in(), inputs, options=xcs.ExecutionOptions(hooks=(timeline,)))
    path = tmp_path / "trace.json"
    trace = timeline.to_chrome_trace(path)
    assert json.loads(path.read_text()) == trace
    check_trace_event_format(trace)
    nodes = node_events(trace)
    assert sorted(e["name"] for e in nodes) == ["join", *(f"u{i}" for i in range(6))]
    by_id = {r.node_id: r for r in timeline.records}
    t0 = min(min(r.start for r in timeline.records), timeline.runs[0].start)
    for event in nodes:
        record = by_id[event["name"]]
        assert event["args"] == {
            "node_id": record.node_id,
            "operator": record.name,
            "attempt": 0,
            "outcome": "ok",
        }
        assert event["pid"] == os.getpid()
        assert event["ts"] == pytest.approx((record.start - t0) * 1e6, abs=0.01)  # microseconds
        assert event["dur"] == pytest.approx((record.end - record.start) * 1e6, abs=0.01)
    (run,) = [e for e in trace["traceEvents"] if e["ph"] == "X" and e["cat"] == "run"]
    assert run["name"] == "run (parallel)" and run["args"]["num_nodes"] == 7
    assert all(run["ts"] <= e["ts"] and e["ts"] + e["dur"] <= run["ts"] + run["dur"] for e in nodes)


def test_async_nodes_overlapping_on_the_loop_thread_get_tracks_of_their_own():
    barrier = asyncio.Barrier(4)  # opens only with four calls in flight together

    @xcs.op
    async def fetch(prompt: str) -> str:
        await asyncio.wait_for(barrier.wait(), timeout=10)
        return prompt

    graph = xcs.Graph()
    for i in range(4):
        graph.add_node(fetch, node_id=f"f{i}")
    timeline = xcs.Timeline()
    xcs.execute_graph(graph, {"prompt": "p"}, options=xcs.ExecutionOptions(hooks=(timeline,)))
    assert {r.thread for r in timeline.records} == {"ember-xcs-async"}
    assert timeline.max_concurrency() == 4
    trace = timeline.to_chrome_trace()
    check_trace_event_format(trace)  # would fail if the overlapping calls shared a track
    tracks = {e["tid"] for e in node_events(trace)}
    names = {
        e["args"]["name"]
        for e in trace["traceEvents"]
        if e["ph"] == "M" and e["name"] == "thread_name" and e["tid"] in tracks
    }
    assert names == {"ember-xcs-async", *(f"ember-xcs-async · {k}" for k in (2, 3, 4))}


def run_flaky_and_broken(
    timeline: xcs.Timeline | None = None, *others: xcs.Timeline, **options: Any
) -> tuple[xcs.Graph, xcs.Timeline]:
    """`flaky` fails once (a secret in its message) then succeeds; `broken` always fails.
    `others` record the same run; `options` are more `ExecutionOptions` fields."""
    attempts = []

    @xcs.op
    def flaky(prompt: str) -> str:
        attempts.append(prompt)
        if len(attempts) < 2:
            raise ConnectionError(f"token sk-secret for {prompt}")
        return prompt

    @xcs.op
    def broken(prompt: str) -> str:
        raise ValueError("no")

    graph = xcs.Graph()
    graph.add_node(flaky, node_id="flaky")
    graph.add_node(broken, node_id="broken")
    timeline = timeline if timeline is not None else xcs.Timeline()
    options = xcs.ExecutionOptions(
        hooks=(timeline, *others),
        **options,
        retries=1,
        retry_backoff=0,
        retry_on=(ConnectionError,),
        return_partial_results=True,
    )
    result = xcs.execute_graph(graph, {"prompt": "p"}, options=options)
    assert list(result.failures) == ["broken"]
    return graph, timeline


def test_retried_and_failed_attempts_are_recorded_with_their_outcome():
    _, timeline = run_flaky_and_broken()
    seen = sorted((r.node_id, r.attempt, r.outcome, r.error) for r in timeline.records)
    assert seen == [
        ("broken", 0, "failed", "ValueError"),
        ("flaky", 0, "retried", "ConnectionError"),
        ("flaky", 1, "ok", ""),
    ]
    trace = timeline.to_chrome_trace()
    check_trace_event_format(trace)
    outcomes = sorted(
        (e["name"], e["args"]["attempt"], e["args"]["outcome"]) for e in node_events(trace)
    )
    assert outcomes == [("broken", 0, "failed"), ("flaky", 0, "retried"), ("flaky", 1, "ok")]
    assert "sk-secret" not in json.dumps(trace)  # only the exception's type is kept
    assert timeline.runs[0].failed is True  # a run with failures, even partial results


class LoggingTimeline(xcs.Timeline):
    """A subclass that overrides one node event and calls `super()`."""

    def __init__(self) -> None:
        super().__init__()
        self.failures: list[tuple[str, int]] = []

    def on_node_failure(self, *, node_id, name, error, attempt, will_retry):
        self.failures.append((node_id, attempt))
        super().on_node_failure(
            node_id=node_id, name=name, error=error, attempt=attempt, will_retry=will_retry
        )


def test_a_timeline_subclass_overriding_an_event_records_the_same_attempts():
    _, plain = run_flaky_and_broken()
    _, logging = run_flaky_and_broken(LoggingTimeline())
    assert sorted(logging.failures) == [("broken", 0), ("flaky", 0)]

    def seen(timeline):
        return sorted((r.node_id, r.attempt, r.outcome, r.error) for r in timeline.records)

    assert seen(logging) == seen(plain)
    assert all(r.start < r.end for r in logging.records)  # each attempt has its own start


def test_two_timelines_in_one_run_record_the_same_attempts():
    first, second = xcs.Timeline(), xcs.Timeline()
    run_flaky_and_broken(first, second)  # the engine logs into one, calls the other

    def seen(timeline):
        return [(r.node_id, r.attempt, r.outcome, r.error, r.thread) for r in timeline.records]

    assert len(first.records) == 3 and seen(first) == seen(second)
    assert len(first.runs) == len(second.runs) == 1


def test_a_timeline_is_recorded_by_the_engine_with_no_hook_call_per_node():
    timeline = xcs.Timeline()
    options = xcs.ExecutionOptions(hooks=timeline)
    starts, ends, failures, timed, log, ticks = node_hook_calls(options)
    assert (starts, ends, failures, ticks) == ((), (), (), ())  # no Python call per attempt
    assert timed and log is not None  # the engine reads both clocks and appends the record
    extend, thread = log
    assert thread is None  # not known for a run in general: looked up per attempt
    extend(("n", "op", 1.0, 2.0, "main", 0))
    extend(("n", "op", 2.0, 3.0, "main", (1, "ValueError", False)))
    pid = os.getpid()
    assert timeline.records == [
        NodeRecord("n", "op", 1.0, 2.0, "main", True, 0, pid),
        NodeRecord("n", "op", 2.0, 3.0, "main", False, 1, pid, "ValueError", False),
    ]
    assert node_hook_calls(options, thread="main")[4] == (extend, "main")


def test_a_sequential_run_inside_a_worker_records_the_workers_thread():
    """A sequential run names its thread once, when it starts: there, a pool worker's."""
    timeline = xcs.Timeline()

    @xcs.op
    def where(*values):
        return threading.current_thread().name

    @xcs.op
    def nested(*values):
        inner = xcs.Graph()
        inner.add_node(where, node_id="inner")
        options = xcs.ExecutionOptions(hooks=timeline, scheduler="sequential")
        return xcs.execute_graph(inner, options=options)["inner"]

    outer = xcs.Graph()
    outer.add_node(nested, node_id="outer")
    outer.add_node(where, node_id="beside")
    options = xcs.ExecutionOptions(hooks=timeline, scheduler="parallel")
    result = xcs.execute_graph(outer, options=options)
    threads = {r.node_id: r.thread for r in timeline.records}
    assert threads == {
        "inner": result["outer"],
        "outer": result["outer"],
        "beside": result["beside"],
    }
    assert threads["inner"] != threading.current_thread().name  # a worker ran it


def test_records_name_each_thread_even_after_a_thread_id_is_reused():
    """A thread's id may go to the next thread once it ended; records keep each name."""
    timeline = xcs.Timeline()
    options = xcs.ExecutionOptions(hooks=(timeline,), scheduler="sequential")
    graph = fan_in(1)
    for i in range(4):  # one after another: a finished thread's id is free for the next
        worker = threading.Thread(
            target=xcs.execute_graph,
            args=(graph, {"prompt": "q", "u0": {"unit": i}}),
            kwargs={"options": options},
            name=f"caller-{i}",
        )
        worker.start()
        worker.join()
    names = [r.thread for r in timeline.records]
    assert names == [f"caller-{i}" for i in range(4) for _ in range(2)]  # u0, then join
    assert [run.thread for run in timeline.runs] == [f"caller-{i}" for i in range(4)]


def test_a_dask_run_records_every_attempt_on_the_workers_threads():
    distributed = pytest.importorskip("distributed", reason="the dask extra is not installed")
    _, plain = run_flaky_and_broken()
    with distributed.Client(
        processes=False, n_workers=1, threads_per_worker=2, dashboard_address=":0"
    ) as client:
        _, timeline = run_flaky_and_broken(scheduler="dask", dask_client=client)

    def seen(timeline):
        return sorted((r.node_id, r.attempt, r.outcome, r.error) for r in timeline.records)

    assert seen(timeline) == seen(plain)
    assert threading.current_thread().name not in {r.thread for r in timeline.records}
    assert timeline.runs[0].scheduler == "dask"


def test_records_of_a_chain_follow_each_other():
    graph = xcs.Graph()
    for i in range(4):
        graph.add_node(answer, node_id=f"u{i}")
        if i:
            graph.connect(f"u{i - 1}", f"u{i}.prompt")
    timeline = xcs.Timeline()
    inputs = {"u0": {"prompt": "q", "unit": 0}, **{f"u{i}": {"unit": i} for i in range(1, 4)}}
    for scheduler in ["sequential", "parallel"]:
        timeline.clear()
        options = xcs.ExecutionOptions(hooks=(timeline,), scheduler=scheduler)
        xcs.execute_graph(graph, inputs, options=options)
        records = timeline.records
        assert [r.node_id for r in records] == ["u0", "u1", "u2", "u3"]
        assert all(r.ok and r.attempt == 0 and r.start <= r.end for r in records)
        assert all(a.end <= b.start for a, b in zip(records[:-1], records[1:], strict=True))
        assert timeline.max_concurrency() == 1


def test_jitted_calls_and_vmap_batches_record_into_one_timeline():
    @xcs.jit
    def pair(prompt):
        return [answer(prompt, 0), answer(prompt, 1)]

    timeline = xcs.Timeline()
    with xcs.execution_options(hooks=(timeline,)):
        pair("a")
        pair("b")  # a cached replay records like the first call
        xcs.vmap(answer, in_axes=(0, None))(["x", "y", "z"], 7)
    assert len(timeline.records) == 2 + 2 + 3
    assert [run.num_nodes for run in timeline.runs][-2:] == [2, 3]
    check_trace_event_format(timeline.to_chrome_trace())


def test_records_name_the_process_and_thread_that_ran_each_attempt():
    timeline = xcs.Timeline()
    graph = fan_in(3)
    options = xcs.ExecutionOptions(hooks=(timeline,), scheduler="sequential")
    xcs.execute_graph(
        graph, {"prompt": "q", **{f"u{i}": {"unit": i} for i in range(3)}}, options=options
    )
    assert {r.process for r in timeline.records} == {os.getpid()}
    assert {r.thread for r in timeline.records} == {threading.current_thread().name}
    assert timeline.runs[0].scheduler == "sequential"


def test_an_empty_timeline_exports_an_empty_trace():
    trace = xcs.Timeline().to_chrome_trace()
    assert trace == {"traceEvents": [], "displayTimeUnit": "ms"}


def test_clear_forgets_records_and_runs():
    timeline = xcs.Timeline()
    xcs.execute_graph(
        fan_in(2),
        {"prompt": "q", "u0": {"unit": 0}, "u1": {"unit": 1}},
        options=xcs.ExecutionOptions(hooks=(timeline,)),
    )
    assert timeline.records and timeline.runs
    timeline.clear()
    assert timeline.records == [] and timeline.runs == []
