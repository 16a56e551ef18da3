"""The worker pool starts threads ahead of a wide run, and the engine asks it to."""

from __future__ import annotations

import threading

import ember_xcs as xcs
from ember_xcs.scheduling import EngineScheduler, InlineExecutor, WorkerPool


def test_reserve_starts_threads_until_that_many_are_free():
    pool = WorkerPool(name="test-reserve", idle_seconds=5)
    pool.reserve(6)
    assert pool.size() == 6 and pool.busy() == 0
    pool.reserve(4)  # already enough free threads: nothing new
    assert pool.size() == 6


def test_reserved_threads_all_take_work_at_once():
    pool = WorkerPool(name="test-reserve-width", idle_seconds=5)
    pool.reserve(8)
    barrier = threading.Barrier(8, timeout=10)
    done = threading.Semaphore(0)
    for _ in range(8):
        pool.submit(lambda: barrier.wait(), lambda _: done.release())
    for _ in range(8):
        assert done.acquire(timeout=10)
    assert pool.size() == 8  # the reserved threads served the burst: none started late


class _RecordingExecutor(InlineExecutor):
    capacity = None

    def __init__(self, options=None):
        self.reserved: list[int] = []
        _RecordingExecutor.last = self

    def reserve(self, width: int) -> None:
        self.reserved.append(width)


def _fan_out(width: int) -> xcs.Graph:
    graph = xcs.Graph()
    for i in range(width):
        graph.add_node(lambda: 1, node_id=f"n{i}")
    return graph


def test_engine_reserves_the_plan_width_capped_by_max_workers():
    scheduler = EngineScheduler("recording", _RecordingExecutor)
    xcs.execute_graph(_fan_out(12), options=xcs.ExecutionOptions(scheduler=scheduler))
    assert _RecordingExecutor.last.reserved == [12]
    options = xcs.ExecutionOptions(scheduler=scheduler, max_workers=5)
    xcs.execute_graph(_fan_out(12), options=options)
    assert _RecordingExecutor.last.reserved == [5]


def test_engine_reserves_no_threads_for_async_nodes():
    async def answer():
        return 1

    graph = xcs.Graph()
    for i in range(6):
        graph.add_node(answer, node_id=f"a{i}")
    graph.add_node(lambda: 2, node_id="sync_one")
    scheduler = EngineScheduler("recording", _RecordingExecutor)
    xcs.execute_graph(graph, options=xcs.ExecutionOptions(scheduler=scheduler))
    assert _RecordingExecutor.last.reserved == [1]
