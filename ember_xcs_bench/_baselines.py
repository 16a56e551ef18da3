"""Baselines: the same program written the way a user would without ember_xcs.

Each baseline walks the lowered program (leaf calls with dependencies) with ordinary code
and is checked to give the same answers as the program itself:

- `threadpool`: a hand-written dataflow over `concurrent.futures.ThreadPoolExecutor`:
  each call is submitted from its last dependency's done-callback, so parallelism is
  maximal; one pool per case, kept across runs (the best case for the baseline: no
  thread start-up inside the timed region).
- `asyncio_gather`: one task per call, each awaiting `asyncio.gather` of its inputs;
  LLM leaves `await asyncio.sleep(L)` (their `aforward`), so no thread is held while a
  call waits; one event loop (`asyncio.Runner`) kept across runs.
- `dask_delayed`: `dask.delayed` per call, `dask.compute(..., scheduler="threads")`
  with as many workers as calls (capped at 512); the delayed graph is built inside the
  timed region, because a real caller builds it per input.
- `langgraph`: a `StateGraph` with one node per call, one state key per output and
  fan-in edges (`add_edge([a, b], c)`) as joins; `invoke` with `max_concurrency` set to
  the number of calls (the default pool has only `cpu_count + 4` threads).

Missing optional packages raise `Unavailable`, so the row is skipped with the reason.
"""

from __future__ import annotations

import asyncio
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ._case import Case, Runner, Unavailable

__all__ = ["BASELINES", "asyncio_gather", "dask_delayed", "langgraph", "threadpool"]

_MAX_THREADS = 512


def _workers(case: Case) -> int:
    return max(1, min(len(case.lowered.nodes), _MAX_THREADS))


def _indexed(case: Case) -> tuple[list[Any], list[tuple[int, ...]], list[list[int]], list[int]]:
    """Leaf functions, dependency indices, successor indices and sink indices."""
    nodes = case.lowered.nodes
    index = {n.node_id: i for i, n in enumerate(nodes)}
    deps = [tuple(index[d] for d in n.deps) for n in nodes]
    successors: list[list[int]] = [[] for _ in nodes]
    for i, ds in enumerate(deps):
        for d in ds:
            successors[d].append(i)
    sinks = [index[s] for s in case.lowered.sinks]
    return [n.operator.forward for n in nodes], deps, successors, sinks


# --- ThreadPoolExecutor ---------------------------------------------------------------------


def threadpool(case: Case) -> Runner:
    fns, deps, successors, sinks = _indexed(case)
    pool = ThreadPoolExecutor(max_workers=_workers(case), thread_name_prefix="bench-tpe")

    def call(x: Any) -> list[Any]:
        return _dataflow(pool, fns, deps, successors, sinks, x)

    return Runner(call, lambda: pool.shutdown(wait=True))


def _dataflow(pool, fns, deps, successors, sinks, x) -> list[Any]:  # noqa: ANN001
    n = len(fns)
    results: list[Any] = [None] * n
    remaining = [len(d) for d in deps]
    left = [n]
    errors: list[BaseException] = []
    lock, finished = threading.Lock(), threading.Event()

    def launch(i: int) -> None:
        args = tuple(results[d] for d in deps[i]) if deps[i] else (x,)
        pool.submit(fns[i], *args).add_done_callback(lambda f: done(i, f))

    def done(i: int, future: Any) -> None:
        if future.exception() is not None:
            errors.append(future.exception())
            finished.set()
            return
        results[i] = future.result()
        ready = []
        with lock:
            left[0] -= 1
            for s in successors[i]:
                remaining[s] -= 1
                if remaining[s] == 0:
                    ready.append(s)
            if left[0] == 0:
                finished.set()
        for s in ready:
            launch(s)

    for i in range(n):
        if not deps[i]:
            launch(i)
    finished.wait()
    if errors:
        raise errors[0]
    return [results[i] for i in sinks]


# --- asyncio.gather -------------------------------------------------------------------------


def asyncio_gather(case: Case) -> Runner:
    nodes = case.lowered.nodes
    _, deps, _, sinks = _indexed(case)
    calls = [getattr(n.operator, "aforward", None) or _as_async(n.operator.forward) for n in nodes]
    runner = asyncio.Runner()

    async def program(x: Any) -> list[Any]:
        tasks: list[asyncio.Task[Any]] = []

        async def node(i: int) -> Any:
            args = await asyncio.gather(*(tasks[d] for d in deps[i])) if deps[i] else (x,)
            return await calls[i](*args)

        for i in range(len(nodes)):  # topological order: every dependency exists already
            tasks.append(asyncio.ensure_future(node(i)))
        return list(await asyncio.gather(*(tasks[i] for i in sinks)))

    def close() -> None:
        for model in _models(case):  # async HTTP pools belong to this loop: close them on it
            if hasattr(model, "aclose"):
                runner.run(model.aclose())
        runner.close()

    return Runner(lambda x: runner.run(program(x)), close)


def _models(case: Case) -> list[Any]:
    found = {id(m): m for n in case.lowered.nodes if (m := getattr(n.operator, "model", None))}
    return list(found.values())


def _as_async(fn: Any) -> Any:
    async def call(*args: Any) -> Any:
        return fn(*args)  # cheap leaves (no-op, numeric) run on the loop

    return call


# --- dask.delayed ---------------------------------------------------------------------------


def dask_delayed(case: Case) -> Runner:
    try:
        import dask
    except ImportError:
        raise Unavailable("dask is not installed (pip install 'ember_xcs[bench]')") from None
    nodes, sinks, workers = case.lowered.nodes, case.lowered.sinks, _workers(case)

    def call(x: Any) -> list[Any]:
        values: dict[str, Any] = {}
        for node in nodes:
            args = [values[d] for d in node.deps] if node.deps else [x]
            values[node.node_id] = dask.delayed(node.operator.forward, pure=False)(*args)
        outputs = dask.compute(
            *[values[s] for s in sinks], scheduler="threads", num_workers=workers
        )
        return list(outputs)

    return Runner(call)


# --- LangGraph ------------------------------------------------------------------------------


def langgraph(case: Case) -> Runner:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # third-party import-time deprecations
            from langgraph.graph import END, START, StateGraph
    except ImportError:
        raise Unavailable("langgraph is not installed (pip install 'ember_xcs[bench]')") from None
    nodes, sinks = case.lowered.nodes, case.lowered.sinks
    state = _state_type([n.node_id for n in nodes])
    builder = StateGraph(state)
    for node in nodes:
        builder.add_node(node.node_id, _langgraph_node(node))
        if not node.deps:
            builder.add_edge(START, node.node_id)
        else:
            builder.add_edge(node.deps[0] if len(node.deps) == 1 else list(node.deps), node.node_id)
    for sink in sinks:
        builder.add_edge(sink, END)
    app = builder.compile()
    config = {"recursion_limit": len(nodes) + 10, "max_concurrency": _workers(case)}

    def call(x: Any) -> list[Any]:
        final = app.invoke({"input__": x}, config=config)
        return [final[f"v_{s}"] for s in sinks]

    return Runner(call)


def _state_type(node_ids: list[str]) -> Any:
    from typing import TypedDict

    fields: dict[str, Any] = {"input__": Any, **{f"v_{n}": Any for n in node_ids}}
    return TypedDict("BenchState", fields, total=False)  # type: ignore[operator]


def _langgraph_node(node: Any) -> Any:
    keys = [f"v_{d}" for d in node.deps] or ["input__"]
    fn, out = node.operator.forward, f"v_{node.node_id}"

    def run(state: dict[str, Any]) -> dict[str, Any]:
        return {out: fn(*(state[k] for k in keys))}

    return run


BASELINES = {
    "threadpool": threadpool,
    "asyncio": asyncio_gather,
    "dask.delayed": dask_delayed,
    "langgraph": langgraph,
}
