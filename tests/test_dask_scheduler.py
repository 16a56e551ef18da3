"""Dask-specific behaviour of the `"dask"` scheduler (the shared contract is in
test_scheduler_contract.py): how the client is found, where calls run, and a real
multi-process `LocalCluster` on 127.0.0.1."""

from __future__ import annotations

import threading
from collections.abc import Iterator
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


def test_timed_out_runs_leave_no_pending_calls_behind(client: Any) -> None:
    from ember_xcs.scheduling import _dask

    release = threading.Event()
    g = xcs.Graph()
    for i in range(20):
        g.add_node(lambda: release.wait(10), node_id=f"slow{i}")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=client, timeout_seconds=0.1)
    try:
        with pytest.raises(xcs.ExecutionTimeoutError):
            xcs.execute_graph(g, options=options)
        assert _dask._local_calls == {}  # the twelve that never started were dropped
    finally:
        release.set()


@pytest.mark.slow
def test_a_multi_process_local_cluster_runs_the_contract_basics() -> None:
    class Log(xcs.ExecutionHooks):
        def __init__(self) -> None:
            self.events: list[tuple[str, str]] = []

        def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
            self.events.append(("start", node_id))

        def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
            self.events.append(("end", node_id))

        def on_node_failure(self, *, node_id: str, error: BaseException, **kw: Any) -> None:
            self.events.append(("failure", node_id))

    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )
    try:
        with distributed.Client(cluster, set_as_default=False) as remote:
            log = Log()
            options = xcs.ExecutionOptions(scheduler="dask", dask_client=remote, hooks=(log,))
            # the worker is another process: calls and their inputs are pickled
            g = xcs.Graph()
            g.add_node(lambda x: (x + 1, __import__("os").getpid()), node_id="a")
            g.add_node(lambda pair: pair[0] * 10, node_id="b")
            g.connect("a", "b")
            result = xcs.execute_graph(
                g, {"x": 1}, options=options.replace(include_intermediates=True)
            )
            assert result["b"] == 20
            assert result["a"][1] != __import__("os").getpid()
            # hook events recorded on the worker are replayed here, in order
            assert log.events == [("start", "a"), ("end", "a"), ("start", "b"), ("end", "b")]

            def broken() -> None:
                raise ValueError("remote failure")

            bad = xcs.Graph()
            bad.add_node(broken, node_id="broken")
            with pytest.raises(xcs.NodeExecutionError, match="remote failure") as info:
                xcs.execute_graph(bad, options=options)
            assert info.value.node_id == "broken"
            assert isinstance(info.value.__cause__, ValueError)
    finally:
        cluster.close()
