"""Fault injection over random DAGs, on every scheduler and every jit mode (hypothesis).

Each node of a random DAG (the generator of `test_scheduler_properties`) is drawn to be
`ok`, to `fail` on every attempt, to be `flaky` (fail once, then succeed), or `slow`
(sleep `SLOW_S`, longer than the node timeout). The options are drawn too: retries,
`return_partial_results`, a graph deadline, a node deadline. Then:

- a failure reaches the caller as an `XCSError` naming a node that really failed (or a
  timeout), never anything else;
- with `return_partial_results=True` nothing is lost: every node is in exactly one of
  the results, `.failures` and `.skipped`; every node whose operator returned before the
  run ended is in the results or `.failures`; without deadlines the three sets are
  exactly what the faults imply; every result equals the fault-free reference;
- a run with `timeout_seconds` on an interruptible executor (threads, Dask) returns by
  its deadline + `DEADLINE_SLACK_S`;
- once every operator has returned, no thread is left behind: no worker is still busy
  and the only new threads are the engine's pool workers (kept for reuse).

Bounded (`max_examples`, at most 16 nodes, sleeps of 0.08 s) so the module runs in well
under a minute on two cores.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_scheduler_properties import build, dags, reference

import ember_xcs as xcs
from ember_xcs.scheduling._pool import shared_pool

SLOW_S = 0.08
STALL_S = 0.4  # longer than deadline + slack: only the explicit examples use it
NODE_TIMEOUT_S = 0.04
GRAPH_TIMEOUT_S = 0.15
DEADLINE_SLACK_S = 0.1
KINDS = ("ok", "ok", "ok", "fail", "flaky", "slow")
# "auto" is held to the deadline too: with a deadline it must run where it can enforce it
INTERRUPTIBLE = ("parallel", "wave", "dask", "auto")


class Boom(Exception):
    """What a faulty operator raises."""


class Faults:
    """Per-node behaviour, attempt counts, and what returned; thread-safe."""

    def __init__(self, kinds: list[str]):
        self.kinds = kinds
        self._cond = threading.Condition()
        self._attempts: dict[str, int] = {}
        self.completed: set[str] = set()
        self.active = 0

    def __call__(self, node: str) -> None:
        """The body `build` runs before computing the node's value."""
        with self._cond:
            self.active += 1
            attempt = self._attempts.get(node, 0)
            self._attempts[node] = attempt + 1
        try:
            kind = self.kinds[int(node[1:])]
            if kind == "fail" or (kind == "flaky" and attempt == 0):
                raise Boom(f"{node} failed on attempt {attempt + 1}")
            if kind in ("slow", "stall"):
                time.sleep(SLOW_S if kind == "slow" else STALL_S)
            with self._cond:
                self.completed.add(node)
        finally:
            with self._cond:
                self.active -= 1
                self._cond.notify_all()

    def failing(self, retries: int) -> set[str]:
        """Nodes that fail however often they are retried."""
        return {
            f"n{i}"
            for i, kind in enumerate(self.kinds)
            if kind == "fail" or (kind == "flaky" and retries == 0)
        }

    def wait_until_idle(self) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.active == 0, timeout=10)


@st.composite
def faulty_dags(draw: Any) -> tuple[list[list[int]], list[str]]:
    deps = draw(dags(max_nodes=16))
    kinds = draw(st.lists(st.sampled_from(KINDS), min_size=len(deps), max_size=len(deps)))
    return deps, kinds


option_draws = st.fixed_dictionaries(
    {
        "return_partial_results": st.booleans(),
        "retries": st.sampled_from([0, 1]),
        "timeout_seconds": st.sampled_from([None, None, GRAPH_TIMEOUT_S]),
        "node_timeout_seconds": st.sampled_from([None, None, NODE_TIMEOUT_S]),
    }
)

SETTINGS = settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    client = distributed.Client(
        processes=False, n_workers=1, threads_per_worker=8, dashboard_address=":0"
    )
    client.submit(sum, [1, 2]).result()  # Dask starts its own threads on first use
    yield client
    client.close()


def descendants(deps: list[list[int]], roots: set[str]) -> set[str]:
    below: set[str] = set()
    for i, parents in enumerate(deps):  # parents come first: one pass suffices
        if any(f"n{p}" in roots or f"n{p}" in below for p in parents):
            below.add(f"n{i}")
    return below


def run(g: xcs.Graph, options: xcs.ExecutionOptions) -> tuple[Any, float]:
    start = time.perf_counter()
    try:
        outcome: Any = xcs.execute_graph(g, options=options)
    except Exception as exc:  # noqa: BLE001 - checked by the caller
        outcome = exc
    return outcome, time.perf_counter() - start


# Dask's in-process threads draw from the global `random` while hypothesis generates a
# case, which hypothesis reports (wrongly, here) as a strategy using `random`
@pytest.mark.filterwarnings("ignore:Do not use the `random` module inside strategies")
@pytest.mark.parametrize("scheduler", ["sequential", "parallel", "wave", "dask", "auto"])
@SETTINGS
@given(case=faulty_dags(), drawn=option_draws)
@example(  # a chain: the deadline passes while its second node stalls
    case=([[], [0], [1]], ["ok", "stall", "ok"]),
    drawn={
        "return_partial_results": False,
        "retries": 0,
        "timeout_seconds": GRAPH_TIMEOUT_S,
        "node_timeout_seconds": None,
    },
)
@example(  # a deadline passing after a failure has already skipped a node
    case=(
        [[], [], [], [], [0], [], [2], [], []],
        ["ok", "ok", "fail", "slow", "slow", "ok", "ok", "ok", "ok"],
    ),
    drawn={
        "return_partial_results": True,
        "retries": 0,
        "timeout_seconds": GRAPH_TIMEOUT_S,
        "node_timeout_seconds": None,
    },
)
def test_faults_surface_by_node_and_partial_results_lose_nothing(
    scheduler: str, case: tuple[list[list[int]], list[str]], drawn: dict[str, Any], request
) -> None:
    deps, kinds = case
    client = request.getfixturevalue("dask_client") if scheduler == "dask" else None
    options = xcs.ExecutionOptions(
        scheduler=scheduler,
        dask_client=client,
        include_intermediates=True,
        retry_backoff=0.001,
        **drawn,
    )

    def attempt() -> float:
        faults = Faults(kinds)
        g = build(deps, faults)
        threads_before = set(threading.enumerate())
        outcome, elapsed = run(g, options)
        completed = set(faults.completed)
        failing = faults.failing(options.retries)
        timed = options.timeout_seconds is not None or options.node_timeout_seconds is not None
        if options.return_partial_results:
            check_partial(outcome, g, reference(deps), completed, failing, deps, timed)
        else:
            check_raised_or_complete(outcome, g, reference(deps), failing, timed)
        check_no_thread_left_behind(faults, threads_before)
        return elapsed

    elapsed = attempt()
    if options.timeout_seconds is not None and scheduler in INTERRUPTIBLE:
        check_deadline(elapsed, options.timeout_seconds, attempt, scheduler)


def check_deadline(elapsed: float, deadline: float, again: Any, what: str) -> None:
    """Returned by `deadline + DEADLINE_SLACK_S`; an overshoot must repeat to count.

    Six engineers share two cores here, so one run can be descheduled for longer than the
    slack; an executor that does not enforce the deadline overshoots every time.
    """
    if elapsed > deadline + DEADLINE_SLACK_S:
        elapsed = min(elapsed, again())
    assert elapsed <= deadline + DEADLINE_SLACK_S, (
        f"{what}: returned {elapsed:.3f} s after a {deadline} s deadline, twice"
    )


def check_partial(
    outcome: Any,
    g: xcs.Graph,
    expected: dict[str, int],
    completed: set[str],
    failing: set[str],
    deps: list[list[int]],
    timed: bool,
) -> None:
    assert isinstance(outcome, xcs.ExecutionResult), repr(outcome)
    results, failures, skipped = set(outcome), set(outcome.failures), outcome.skipped
    assert len(skipped) == len(set(skipped)), f"a node skipped twice: {skipped}"
    assert not (results & failures) and not (results & set(skipped))
    assert not (failures & set(skipped))
    assert results | failures | set(skipped) == set(g.nodes), "a node is in no list"
    assert completed <= results | failures, f"lost: {completed - results - failures}"
    for node in results:
        assert outcome[node] == expected[node], node
    for node, error in outcome.failures.items():
        assert isinstance(error, xcs.XCSError)
        if isinstance(error, xcs.NodeExecutionError):
            assert error.node_id == node and node in failing and f"'{node}'" in str(error)
            assert isinstance(error.__cause__, Boom)
        else:
            assert isinstance(error, xcs.ExecutionTimeoutError), repr(error)
            assert error.node_id == node or node in error.running
    if not timed:  # then the faults alone decide every list
        below = descendants(deps, failing)
        assert failures == failing - below
        assert set(skipped) == below
        assert results == set(g.nodes) - failing - below


def check_raised_or_complete(
    outcome: Any, g: xcs.Graph, expected: dict[str, int], failing: set[str], timed: bool
) -> None:
    if isinstance(outcome, xcs.ExecutionResult):
        assert not failing, f"{sorted(failing)} failed, yet the run returned"
        assert dict(outcome) == expected
        return
    assert isinstance(outcome, xcs.XCSError), repr(outcome)
    if isinstance(outcome, xcs.NodeExecutionError):
        assert outcome.node_id in failing and f"'{outcome.node_id}'" in str(outcome)
        assert isinstance(outcome.__cause__, Boom)
        return
    assert timed and isinstance(outcome, xcs.ExecutionTimeoutError), repr(outcome)
    if outcome.node_id is not None:  # a node deadline, naming the node
        assert outcome.node_id in g.nodes and f"'{outcome.node_id}'" in str(outcome)
    else:
        assert "timeout_seconds" in str(outcome)


def check_no_thread_left_behind(faults: Faults, threads_before: set[threading.Thread]) -> None:
    assert faults.wait_until_idle(), "an operator is still running 10 s after the run"
    pool = shared_pool()
    give_up = time.monotonic() + 5
    while pool.busy() and time.monotonic() < give_up:  # a worker handing back its last result
        time.sleep(0.005)
    assert pool.busy() == 0, f"{pool.busy()} worker(s) still busy after every operator returned"
    new = [t for t in set(threading.enumerate()) - threads_before if t.is_alive()]
    # ours: the shared pool's workers (kept for reuse) and the one thread that starts a
    # dynamic run's lone calls the body leaves waiting (kept 30 s); Dask's: its worker's pool
    ours = ("ember-xcs-worker", "ember-xcs-starter", "Dask-")
    strays = [t.name for t in new if not t.name.startswith(ours)]
    strays = [name for name in strays if "-Dask-Default-Threads-" not in name]
    assert not strays, f"threads left behind: {strays}"


# --- jit -----------------------------------------------------------------------------------


def jitted_pipeline(deps: list[list[int]], faults: Faults, mode: str) -> Any:
    """A function calling one `@xcs.op` per node in order, jitted with `mode`."""

    def make(i: int) -> Any:
        def node(*inputs: int) -> int:
            faults(f"n{i}")
            return (i + sum(inputs)) % 1_000_003

        return xcs.op(node, name=f"n{i}")

    ops = [make(i) for i in range(len(deps))]

    def pipeline(seed: int) -> dict[str, int]:
        values: list[Any] = []
        for i, parents in enumerate(deps):
            values.append(ops[i](*[values[p] for p in parents]) if parents else ops[i]())
        return {f"n{i}": v for i, v in enumerate(values)}

    return xcs.jit(pipeline, mode=mode)


@pytest.mark.parametrize("mode", ["auto", "trace", "structural", "dynamic"])
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=faulty_dags(), drawn=option_draws)
def test_jitted_pipelines_surface_faults_by_node_and_keep_deadlines(
    mode: str, case: tuple[list[list[int]], list[str]], drawn: dict[str, Any]
) -> None:
    deps, kinds = case
    drawn = {**drawn, "return_partial_results": False}  # a jitted call returns its own value

    def attempt() -> float:
        faults = Faults(kinds)
        jitted = jitted_pipeline(deps, faults, mode)
        threads_before = set(threading.enumerate())
        start = time.perf_counter()
        with xcs.execution_options(scheduler="parallel", retry_backoff=0.001, **drawn):
            try:
                outcome: Any = jitted(0)
            except Exception as exc:  # noqa: BLE001 - checked below
                outcome = exc
        elapsed = time.perf_counter() - start
        check_jit_outcome(outcome, deps, faults.failing(drawn["retries"]), drawn)
        check_no_thread_left_behind(faults, threads_before)
        return elapsed

    elapsed = attempt()
    if drawn["timeout_seconds"] is not None:
        check_deadline(elapsed, drawn["timeout_seconds"], attempt, f"jit {mode}")


def check_jit_outcome(
    outcome: Any, deps: list[list[int]], failing: set[str], drawn: dict[str, Any]
) -> None:
    timed = drawn["timeout_seconds"] is not None or drawn["node_timeout_seconds"] is not None
    if isinstance(outcome, dict):
        assert not failing, f"{sorted(failing)} failed, yet the call returned"
        assert outcome == reference(deps)
        return
    assert isinstance(outcome, xcs.XCSError), repr(outcome)
    named = {f"n{i}" for i in range(len(deps)) if f"'n{i}'" in str(outcome)}
    if isinstance(outcome, xcs.NodeExecutionError):
        assert named & failing, str(outcome)
    else:
        assert timed and isinstance(outcome, xcs.ExecutionTimeoutError), repr(outcome)
