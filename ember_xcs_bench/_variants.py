"""The ember_xcs contenders: plain Python, explicit graphs per scheduler, jit per mode.

- `plain`: the program called directly, no jit and no graph: every call in sequence.
  This is what "speedup vs plain Python" divides by.
- `graph(scheduler, max_workers)`: `execute_graph` on the lowered `Graph` (built once; the
  engine caches its plan), with fresh inputs every run.
- `jit(mode, max_workers)`: `ember_xcs.jit(program, mode=mode)` on a fresh program
  instance; its first (warm-up) call traces, the timed calls replay.

The Dask scheduler needs a `distributed.Client`; one in-process client
(`processes=False`, one worker with enough threads for the widest scenario) is started on
first use and shared by every case until `close_shared()`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from ember_xcs._options import ExecutionOptions, execution_options
from ember_xcs.scheduling import execute_graph

from ._case import Case, Runner, Unavailable, as_list
from ._lowering import root_parameters

__all__ = ["DASK_THREADS", "close_shared", "graph", "jit", "jit_facts", "plain"]

DASK_THREADS = 128  # >= the widest scenario (111 calls), so Dask never queues a call
_shared: dict[str, Any] = {}


def plain(case: Case) -> Runner:
    program, sinks = case.program, len(case.lowered.sinks)
    return Runner(lambda x: as_list(program(x), sinks))


def graph(scheduler: str, max_workers: int | None = None) -> Callable[[Case], Runner]:
    def make(case: Case) -> Runner:
        if scheduler == "dask":
            dask_client()  # the default client; passing it in options would ship it to workers
        options = ExecutionOptions(scheduler=scheduler, max_workers=max_workers)
        names, sinks, g = root_parameters(case.lowered), case.lowered.sinks, case.graph

        def call(x: Any) -> list[Any]:
            result = execute_graph(g, dict.fromkeys(names, x), options=options)
            return [result[s] for s in sinks]

        return Runner(call)

    return make


def jit(
    mode: str, max_workers: int | None = None, *, shared: bool = False
) -> Callable[[Case], Runner]:
    """`shared=True` reuses one jitted program per case and mode (worker-cap rows)."""

    def make(case: Case) -> Runner:
        from ember_xcs import jit as xcs_jit

        key = ("jit", mode)
        compiled = case.cache.get(key) if shared else None
        if compiled is None:
            compiled = xcs_jit(case.fresh_program(), mode=mode)
            case.cache[key] = compiled
        sinks = len(case.lowered.sinks)
        overrides = {"max_workers": max_workers} if max_workers else {}

        def call(x: Any) -> list[Any]:
            with execution_options(**overrides) if overrides else contextlib.nullcontext():
                return as_list(compiled(x), sinks)

        return Runner(call, info=lambda: jit_facts(compiled))

    return make


def jit_facts(compiled: Any) -> dict[str, Any]:
    """What jit did: strategy, plan size, traces (to show a row measured what it claims)."""
    from ember_xcs import get_jit_stats

    stats = get_jit_stats(compiled)
    return {
        "strategy": stats.last_strategy,
        "plan_nodes": stats.nodes,
        "traces": stats.traces,
        "numeric_segments": stats.numeric_segments,
        "peak_in_flight": stats.peak_in_flight,
    }


def dask_client() -> Any:
    """The shared in-process Dask client, started on first use."""
    if "dask" not in _shared:
        try:
            import distributed
        except ImportError:
            raise Unavailable(
                "dask distributed is not installed (pip install 'ember_xcs[bench]')"
            ) from None
        _shared["dask"] = distributed.Client(
            processes=False,
            n_workers=1,
            threads_per_worker=DASK_THREADS,
            dashboard_address=":0",  # never a fixed port (8787 may be taken)
            set_as_default=True,  # see _dask_options: found via get_client(), not options
        )
    return _shared["dask"]


def close_shared() -> None:
    """Close the Dask client, if one was started."""
    client = _shared.pop("dask", None)
    if client is not None:
        client.close()
