"""Dask-specific behaviour of the `"dask"` scheduler (the shared contract is in
test_scheduler_contract.py): how the client is found, where calls run, and a real
multi-process `LocalCluster` on 127.0.0.1."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from contextlib import redirect_stderr
from typing import Any

import pytest

import ember_xcs as xcs

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    c = distributed.Client(
        processes=False,
        n_workers=1,
        threads_per_worker=8,
        dashboard_address=":0",
        set_as_default=False,
    )
    yield c
    c.close()


def small_graph() -> xcs.Graph:
    g = xcs.Graph()
    g.add_node(lambda x: x + 1, node_id="a")
    g.add_node(lambda v: v * 10, node_id="b")
    g.connect("a", "b")
    return g


def test_calls_run_on_dask_worker_threads(client: Any) -> None:
    g = xcs.Graph()
    for i in range(4):
        g.add_node(lambda: threading.current_thread().name, node_id=f"n{i}")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=client)
    names = set(xcs.execute_graph(g, options=options).values())
    assert names and all("Dask" in name for name in names)


def test_independent_calls_run_concurrently_on_the_cluster(client: Any) -> None:
    barrier = threading.Barrier(8, timeout=30)
    g = xcs.Graph()
    for i in range(8):
        g.add_node(lambda: barrier.wait(), node_id=f"n{i}")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=client)
    result = xcs.execute_graph(g, options=options)
    assert sorted(result.values()) == list(range(8))
    assert result.stats.max_in_flight == 8


def test_in_process_clusters_run_the_engines_own_calls(client: Any) -> None:
    # nothing here is picklable (a lock, a closure over a list), and nothing is copied
    lock, seen = threading.Lock(), []

    def record(x: int) -> int:
        with lock:
            seen.append(x)
        return x

    g = xcs.Graph()
    for i in range(5):
        g.add_node(record, node_id=f"r{i}")
    inputs = {f"r{i}": {"x": i} for i in range(5)}
    xcs.execute_graph(g, inputs, options=xcs.ExecutionOptions(scheduler="dask", dask_client=client))
    assert sorted(seen) == list(range(5))


def test_the_current_client_is_used_when_none_is_given(client: Any) -> None:
    options = xcs.ExecutionOptions(scheduler="dask")
    with client.as_current():
        assert xcs.execute_graph(small_graph(), {"x": 1}, options=options) == {"b": 20}


def test_a_scheduler_address_opens_and_closes_its_own_client(client: Any) -> None:
    address = client.scheduler.address
    before = len(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.clients)))
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=address)
    assert xcs.execute_graph(small_graph(), {"x": 2}, options=options) == {"b": 30}
    after = len(client.run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.clients)))
    assert after <= before


def test_no_client_is_an_options_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client() -> None:  # what distributed raises when no client was ever started
        raise ValueError("No clients found")

    monkeypatch.setattr(distributed, "get_client", no_client)
    options = xcs.ExecutionOptions(scheduler="dask")
    with pytest.raises(xcs.OptionsError) as info:
        xcs.execute_graph(small_graph(), {"x": 1}, options=options)
    assert str(info.value) == (
        "scheduler='dask' found no Dask client: create one with distributed.Client(...) or "
        "pass execution_options(dask_client=...)"
    )


def test_calls_that_had_not_started_at_the_deadline_never_run(client: Any) -> None:
    release, lock, started = threading.Event(), threading.Lock(), []

    def slow(i: int) -> bool:
        with lock:
            started.append(i)
        return release.wait(10)

    g = xcs.Graph()
    for i in range(20):  # twelve more than the worker's eight threads
        g.add_node(lambda i=i: slow(i), node_id=f"slow{i}")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=client, timeout_seconds=0.3)
    try:
        with pytest.raises(xcs.ExecutionTimeoutError) as info:
            xcs.execute_graph(g, options=options)
        assert len(info.value.running) == 8
        begun = len(started)
    finally:
        release.set()
    time.sleep(0.3)  # time for the twelve to have started, had they not been stopped
    assert begun == 8 and len(started) == 8


def test_the_plan_goes_to_dask_as_one_graph(client: Any) -> None:
    """No client round trip per node: every task is on the scheduler before the first
    one finishes (the engine loop would submit `b` only once `a` is done)."""
    seen: list[int] = []

    def a() -> int:
        seen.append(len(client.run_on_scheduler(lambda dask_scheduler: dask_scheduler.tasks)))
        return 1

    g = xcs.Graph()
    g.add_node(a, node_id="a")
    g.add_node(lambda v: v + 1, node_id="b")
    g.add_node(lambda v: v + 1, node_id="c")
    g.connect("a", "b", "c")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=client)
    assert xcs.execute_graph(g, options=options) == {"c": 3}
    assert seen[0] >= 3


def test_a_failure_skips_its_dependents_and_stops_the_rest(client: Any) -> None:
    ran: list[str] = []

    def fail() -> None:
        raise ValueError("no")

    g = xcs.Graph()
    g.add_node(fail, node_id="fail")
    g.add_node(lambda v: ran.append("after"), node_id="after")
    g.connect("fail", "after")
    for i in range(4):
        g.add_node(lambda i=i: ran.append(f"other{i}"), node_id=f"other{i}")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=client)
    result = xcs.execute_graph(g, options=options.replace(return_partial_results=True))
    assert result.skipped == ["after"] and set(result.failures) == {"fail"}
    assert sorted(ran) == [f"other{i}" for i in range(4)]
    with pytest.raises(ValueError, match="no") as info:  # also a NodeExecutionError
        xcs.execute_graph(g, options=options)
    assert info.value.node_id == "fail" and "after" not in ran


@pytest.fixture(scope="module")
def remote() -> Iterator[Any]:
    """A client of a two-process `LocalCluster` on 127.0.0.1."""
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=4, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    try:
        with distributed.Client(cluster, set_as_default=False) as c:
            yield c
    finally:
        cluster.close()


@pytest.mark.slow
def test_a_multi_process_local_cluster_runs_the_contract_basics(remote: Any) -> None:
    class Log(xcs.ExecutionHooks):
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []

        def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
            self.events.append(("start", node_id))

        def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
            self.events.append(("end", node_id))

        def on_node_failure(self, *, node_id: str, error: BaseException, **kw: Any) -> None:
            self.events.append(("failure", node_id))

    log = Log()
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=remote, hooks=(log,))
    # the worker is another process: calls and their inputs are pickled
    g = xcs.Graph()
    g.add_node(lambda x: (x + 1, __import__("os").getpid()), node_id="a")
    g.add_node(lambda pair: pair[0] * 10, node_id="b")
    g.connect("a", "b")
    result = xcs.execute_graph(g, {"x": 1}, options=options.replace(include_intermediates=True))
    assert result["b"] == 20
    assert result["a"][1] != __import__("os").getpid()
    # hook events sent from the worker arrive here, in order
    assert log.events == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b")]
    # with max_workers the engine loop submits each call; its events come live too
    capped = Log()
    result = xcs.execute_graph(g, {"x": 1}, options=options.replace(hooks=(capped,), max_workers=2))
    assert result["b"] == 20 and capped.events == log.events

    def broken() -> None:
        raise ValueError("remote failure")

    bad = xcs.Graph()
    bad.add_node(broken, node_id="broken")
    with pytest.raises(xcs.NodeExecutionError, match="remote failure") as info:
        xcs.execute_graph(bad, options=options)
    assert info.value.node_id == "broken"
    assert isinstance(info.value.__cause__, ValueError)

    lock = threading.Lock()  # cannot be sent to another process
    locked = xcs.Graph()
    locked.add_node(lambda: lock.locked(), node_id="uses_lock")
    with pytest.raises(xcs.ExecutionError, match="'uses_lock'.*cannot be sent") as info:
        xcs.execute_graph(locked, options=options)
    assert info.value.node_id == "uses_lock"


@pytest.mark.slow  # its own cluster: on the shared one Dask placed all 16 calls on one worker
def test_a_two_worker_cluster_runs_a_fan_out_across_both_workers(tmp_path: Any) -> None:
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=4, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    try:
        with distributed.Client(cluster, set_as_default=False) as remote:
            g = xcs.Graph()
            for i in range(16):
                g.add_node(_pid_after_sleep, node_id=f"w{i}")
                g.add_node(_count, node_id=f"count{i}")
                g.connect(f"w{i}", f"count{i}")
            g.add_node(_distinct, node_id="distinct")
            for i in range(16):
                g.connect(f"count{i}", "distinct")
            options = xcs.ExecutionOptions(scheduler="dask", dask_client=remote)
            result = xcs.execute_graph(g, {"seconds": 0.2}, options=options)
            assert result["distinct"] == 2  # both worker processes ran calls

            # from a cluster only the sinks are fetched, but a jitted plan gets every
            # output it returns
            jitted = xcs.jit(_pair, mode="trace")
            with xcs.execution_options(scheduler="dask", dask_client=remote):
                assert jitted("q") == _pair("q") and jitted("r") == _pair("r")
            assert xcs.get_jit_stats(jitted).plan_calls == 2

            # a failure cancels the rest: of eight chains of six 0.5 s calls (3 s each),
            # the calls after the first of each chain never start
            failing = xcs.Graph()
            failing.add_node(_fail_now, node_id="fail")
            for c in range(8):
                for i in range(6):
                    failing.add_node(_touch, node_id=f"c{c}_{i}")
                    if i:
                        failing.connect(f"c{c}_{i - 1}", f"c{c}_{i}")
            with pytest.raises(ValueError, match="failed at once"):
                xcs.execute_graph(failing, {"folder": str(tmp_path)}, options=options)
            time.sleep(1.5)  # long enough for a second call of each chain, were it started
            ran = len(list(tmp_path.iterdir()))
            assert 0 < ran <= 8 + 2  # the chains' first calls, at most a straggler each side
    finally:
        cluster.close()


def _fail_now() -> None:
    raise ValueError("failed at once")


def _touch(folder: str, *previous: Any) -> str:
    import os
    import pathlib

    time.sleep(0.5)
    path = pathlib.Path(folder) / f"{os.getpid()}-{time.perf_counter_ns()}"
    path.touch()
    return str(path)


def _pid_after_sleep(seconds: float) -> int:
    import os

    time.sleep(seconds)
    return os.getpid()


def _count(pid: int) -> int:
    return pid


def _distinct(*pids: int) -> int:
    return len(set(pids))


def test_a_jitted_plan_on_dask_returns_intermediate_outputs(client: Any) -> None:
    jitted = xcs.jit(_pair, mode="trace")  # `_pair` returns an output that is not a sink
    with xcs.execution_options(scheduler="dask", dask_client=client):
        assert jitted("q") == _pair("q") and jitted("r") == _pair("r")
    assert xcs.get_jit_stats(jitted).plan_calls == 2  # the plan ran as one Dask graph


@xcs.op
def _shout(text: str) -> str:
    return text.upper()


@xcs.op
def _join(a: str, b: str) -> str:
    return f"{a}|{b}"


@xcs.op
def _exclaim(text: str) -> str:
    return f"{text}!"


def _pair(text: str) -> tuple[str, str]:
    first = _shout(text)  # returned, and also an input of `_join`: not a sink
    return first, _join(first, _exclaim(text))


# A node that waits until the run's hooks, on the client, were told that it started: it
# returns True only if its start event arrived while it was still running (live events),
# False after 30 s if events came only with its result. Module-level, so a cluster
# worker in this process unpickles the same function and the same events.
_starts_seen: dict[str, threading.Event] = {}


def _wait_for_own_start_event(node: str) -> bool:
    return _starts_seen[node].wait(timeout=30)


class _StartWatcher(xcs.ExecutionHooks):
    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        _starts_seen[node_id].set()


@pytest.fixture(scope="module")
def tcp_client() -> Iterator[Any]:
    """Workers in this process, reached over TCP: the client ships calls as to any
    cluster (nothing is shared through the in-process table)."""
    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        protocol="tcp://",
        host="127.0.0.1",
        dashboard_address=":0",
    )
    with distributed.Client(cluster, set_as_default=False) as c:
        assert c.scheduler.address.startswith("tcp://")
        yield c
    cluster.close()


@pytest.mark.parametrize("max_workers", [None, 2], ids=["one dask graph", "engine loop"])
def test_a_cluster_workers_node_events_reach_the_hooks_while_the_node_runs(
    tcp_client: Any, max_workers: int | None
) -> None:
    node = f"waits_{max_workers}"
    _starts_seen[node] = threading.Event()
    g = xcs.Graph()
    g.add_node(_wait_for_own_start_event, node_id=node)
    options = xcs.ExecutionOptions(
        scheduler="dask", dask_client=tcp_client, hooks=_StartWatcher(), max_workers=max_workers
    )
    assert xcs.execute_graph(g, {node: {"node": node}}, options=options)[node] is True


@pytest.mark.parametrize("max_workers", [None, 2], ids=["one dask graph", "engine loop"])
def test_a_progress_bar_stays_in_this_process_on_a_cluster_run(
    tcp_client: Any, max_workers: int | None
) -> None:
    # the bar's hook holds a lock: it must not be shipped with the calls
    options = xcs.ExecutionOptions(
        scheduler="dask", dask_client=tcp_client, progress=True, max_workers=max_workers
    )
    assert xcs.execute_graph(small_graph(), {"x": 1}, options=options) == {"b": 20}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("max_workers", [None, 2], ids=["one dask graph", "engine loop"])
def test_a_progress_bar_counts_every_node_of_a_cluster_run_once(
    tcp_client: Any, max_workers: int | None
) -> None:
    g = xcs.Graph()
    for i in range(6):  # two worker threads: nodes overlap, their events interleave
        g.add_node(lambda: time.sleep(0.05) or 1, node_id=f"n{i}")
    options = xcs.ExecutionOptions(
        scheduler="dask", dask_client=tcp_client, progress=0, max_workers=max_workers
    )
    screen = _Terminal()
    with redirect_stderr(screen):
        xcs.execute_graph(g, options=options)
    counts = re.findall(r"(\d+)/6", screen.getvalue())
    assert counts and counts[-1] == "6", screen.getvalue()


def _runs_three_inside(x: int) -> int:
    inner = xcs.Graph()
    for i in range(3):
        inner.add_node(lambda: 1, node_id=f"inner{i}")
    with xcs.execution_options(scheduler="sequential"):  # the worker's current hooks too
        xcs.execute_graph(inner)
    return x


def test_nodes_of_runs_made_inside_a_cluster_node_do_not_count_on_the_bar(
    tcp_client: Any,
) -> None:
    g = xcs.Graph()
    g.add_node(_runs_three_inside, node_id="a")
    g.add_node(_runs_three_inside, node_id="b")
    timeline = xcs.Timeline()
    options = xcs.ExecutionOptions(
        scheduler="dask", dask_client=tcp_client, progress=0, hooks=(timeline,)
    )
    screen = _Terminal()
    with redirect_stderr(screen):
        assert xcs.execute_graph(g, {"a": {"x": 1}, "b": {"x": 2}}, options=options) == {
            "a": 1,
            "b": 2,
        }
    counts = re.findall(r"(\d+)/2", screen.getvalue())
    assert counts and counts[-1] == "2", screen.getvalue()
    ids = sorted(r.node_id for r in timeline.records)
    assert ids == ["a", "b", *sorted(["inner0", "inner1", "inner2"] * 2)]  # nested ones too
