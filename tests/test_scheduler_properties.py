"""Properties of the engine on random DAGs (hypothesis).

- every scheduler gives the sequential scheduler's answers;
- the parallel scheduler never starts a node before all of its inputs have finished;
- the number of nodes observed in flight never exceeds `max_workers`.

Node `i` of a random DAG computes `i + sum(inputs)` modulo a prime, so any dropped,
duplicated or misrouted edge changes some output.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import ember_xcs as xcs
from ember_xcs.scheduling import EngineScheduler, NodeCall

PRIME = 1_000_003
SETTINGS = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@st.composite
def dags(draw: Any, max_nodes: int = 200) -> list[list[int]]:
    """Dependencies per node: node `i` depends on up to three earlier nodes.

    Sizes and fan-in are drawn by hypothesis (so it shrinks them); the edges come from a
    drawn `Random`, which is far cheaper than drawing hundreds of integers one by one.
    """
    n = draw(st.integers(min_value=1, max_value=max_nodes))
    max_fan_in = draw(st.integers(min_value=0, max_value=3))
    reach = draw(st.sampled_from([2, 8, 1_000]))  # chains, local meshes, anything goes
    rng = draw(st.randoms(use_true_random=False))
    deps: list[list[int]] = [[]]
    for i in range(1, n):
        low = max(0, i - reach)
        deps.append(sorted({rng.randint(low, i - 1) for _ in range(rng.randint(0, max_fan_in))}))
    return deps[:n]


def build(deps: list[list[int]], body: Any = None) -> xcs.Graph:
    g = xcs.Graph()
    for i, parents in enumerate(deps):

        def node(*inputs: int, i: int = i) -> int:
            if body is not None:
                body(f"n{i}")
            return (i + sum(inputs)) % PRIME

        g.add_node(node, node_id=f"n{i}")
        for p in parents:
            g.add_edge(f"n{p}", f"n{i}")
    return g


def reference(deps: list[list[int]]) -> dict[str, int]:
    values: list[int] = []
    for i, parents in enumerate(deps):
        values.append((i + sum(values[p] for p in parents)) % PRIME)
    return {f"n{i}": v for i, v in enumerate(values)}


class _CallerThreadExecutor:
    """A user-written executor: runs each call on the engine's thread as it is submitted."""

    capacity = None

    def __init__(self, options: xcs.ExecutionOptions):
        pass

    def submit(self, index: int, call: NodeCall, done: Any) -> None:
        try:
            done.put((index, True, call()))
        except Exception as exc:  # noqa: BLE001
            done.put((index, False, exc))

    def close(self) -> None:
        pass


CUSTOM = EngineScheduler("custom", _CallerThreadExecutor)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    client = distributed.Client(
        processes=False, n_workers=1, threads_per_worker=4, dashboard_address=":0"
    )
    yield client
    client.close()


@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "wave", "auto", CUSTOM])
@SETTINGS
@given(deps=dags())
def test_every_scheduler_matches_the_reference_on_random_dags(
    scheduler: Any, deps: list[list[int]]
) -> None:
    g = build(deps)
    options = xcs.ExecutionOptions(scheduler=scheduler, include_intermediates=True)
    assert dict(xcs.execute_graph(g, options=options)) == reference(deps)


@settings(max_examples=10, deadline=None)
@given(deps=dags(max_nodes=60))
def test_dask_scheduler_matches_the_reference_on_random_dags(
    dask_client: Any, deps: list[list[int]]
) -> None:
    g = build(deps)
    options = xcs.ExecutionOptions(
        scheduler="dask", dask_client=dask_client, include_intermediates=True
    )
    assert dict(xcs.execute_graph(g, options=options)) == reference(deps)


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
@SETTINGS
@given(deps=dags())
def test_results_hold_only_sink_outputs_by_default(scheduler: str, deps: list[list[int]]) -> None:
    expected = reference(deps)
    has_children = {f"n{p}" for parents in deps for p in parents}
    sinks = {k: v for k, v in expected.items() if k not in has_children}
    g = build(deps)
    assert dict(xcs.execute_graph(g, options=xcs.ExecutionOptions(scheduler=scheduler))) == sinks


class Events:
    """A global sequence of start/end events and the in-flight count, thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seq = 0
        self.start: dict[str, int] = {}
        self.end: dict[str, int] = {}
        self.now = 0
        self.peak = 0

    def enter(self, node: str) -> None:
        with self._lock:
            self.seq += 1
            self.start[node] = self.seq
            self.now += 1
            self.peak = max(self.peak, self.now)

    def leave(self, node: str) -> None:
        with self._lock:
            self.seq += 1
            self.end[node] = self.seq
            self.now -= 1


def _recording(events: Events) -> Any:
    def body(node: str) -> None:
        events.enter(node)
        # hand the GIL to other workers so overlapping calls really interleave
        threading.Event().wait(0.0005)
        events.leave(node)

    return body


@SETTINGS
@given(deps=dags(max_nodes=120), max_workers=st.integers(min_value=1, max_value=12))
def test_parallel_scheduler_never_runs_a_node_before_its_inputs(
    deps: list[list[int]], max_workers: int
) -> None:
    events = Events()
    g = build(deps, _recording(events))
    options = xcs.ExecutionOptions(scheduler="parallel", max_workers=max_workers)
    xcs.execute_graph(g, options=options)
    assert len(events.start) == len(deps)
    for i, parents in enumerate(deps):
        for p in parents:
            assert events.end[f"n{p}"] < events.start[f"n{i}"], f"n{i} started before n{p} ended"


@pytest.mark.parametrize("scheduler", ["parallel", "wave"])
@SETTINGS
@given(deps=dags(max_nodes=120), max_workers=st.integers(min_value=1, max_value=12))
def test_nodes_in_flight_never_exceed_max_workers(
    scheduler: str, deps: list[list[int]], max_workers: int
) -> None:
    events = Events()
    g = build(deps, _recording(events))
    options = xcs.ExecutionOptions(scheduler=scheduler, max_workers=max_workers)
    result = xcs.execute_graph(g, options=options)
    assert 1 <= events.peak <= max_workers
    assert result.stats.max_in_flight <= max_workers


def test_independent_nodes_fill_every_worker() -> None:
    # the other side of the cap: with room for all of them, all twenty run at once
    barrier = threading.Barrier(20, timeout=30)
    events = Events()

    def unit(i: int) -> int:
        events.enter(f"u{i}")
        barrier.wait()
        events.leave(f"u{i}")
        return i

    g = xcs.Graph()
    for i in range(20):
        g.add_node(lambda i=i: unit(i), node_id=f"u{i}")
    options = xcs.ExecutionOptions(scheduler="parallel", max_workers=20)
    assert sorted(xcs.execute_graph(g, options=options).values()) == list(range(20))
    assert events.peak == 20


@SETTINGS
@given(deps=dags(max_nodes=80))
def test_plan_waves_match_the_graph_waves(deps: list[list[int]]) -> None:
    g = build(deps)
    plan = xcs.scheduling.plan_for_graph(g)
    assert plan.waves() == g.waves()
    assert plan.critical_path_length == len(g.critical_path())
