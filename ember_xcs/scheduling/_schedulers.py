"""Schedulers: the engine loop plus an executor, and a registry of names.

| name | executor | notes |
|---|---|---|
| `"sequential"` | inline, on the caller's thread | no threads at all; the baseline |
| `"parallel"` | shared thread pool + event loop | dataflow; the default for graphs with parallelism |
| `"wave"` | same as parallel | waits for each wave to finish; kept for comparison |
| `"noop"` | none | validates and returns the plan; calls nothing |
| `"dask"` | a `distributed.Client` | for clusters: the plan goes to Dask as one graph (`_dask_graph`) |
| `"auto"` | — | `"parallel"` when any wave has two or more nodes or a deadline is set, else `"sequential"` |

Any object with `run(plan, inputs, options) -> ExecutionResult` is a `Scheduler`; register
it under a name with `register_scheduler`, or pass it as `ExecutionOptions(scheduler=...)`.
`EngineScheduler(name, make_executor)` builds one from an executor, which is usually all a
new backend needs.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from .._errors import OptionsError
from .._options import (
    ExecutionOptions,
    blame_environment,
    reset_current_options,
    set_current_options,
)
from ..operators import intercept_calls
from ._engine import run_plan
from ._executors import InlineExecutor, ThreadExecutor
from ._plan import ExecutionPlan
from ._result import ExecutionResult, ExecutionStats

__all__ = [
    "EngineScheduler",
    "NoopScheduler",
    "Scheduler",
    "available_schedulers",
    "register_scheduler",
    "resolve_scheduler",
]


@runtime_checkable
class Scheduler(Protocol):
    """Anything that can run an `ExecutionPlan`."""

    def run(
        self, plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions
    ) -> ExecutionResult: ...


class EngineScheduler:
    """The shared engine loop driving the executor that `make_executor(options)` returns.

    Its results' `by_index` holds every node's output (`fills_by_index`), which jit's
    replay reads; a scheduler without it is asked for `include_intermediates` instead."""

    fills_by_index = True

    def __init__(
        self, name: str, make_executor: Callable[[ExecutionOptions], Any], *, barrier: bool = False
    ):
        self.name = name
        self.make_executor = make_executor
        self.barrier = barrier

    def run(
        self, plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions
    ) -> ExecutionResult:
        # Operators run concretely here; a trace active in the caller must not see them.
        # The run's options are made current before the executor copies this context,
        # so every node call on this thread or the executor's threads finds them set.
        token = set_current_options(options)
        try:
            with intercept_calls(None):
                executor = self.make_executor(options)
                try:
                    return run_plan(
                        plan,
                        inputs,
                        options,
                        executor,
                        scheduler_name=self.name,
                        barrier=self.barrier,
                    )
                finally:
                    executor.close()
        finally:
            reset_current_options(token)

    def __repr__(self) -> str:
        return f"EngineScheduler({self.name!r})"


class NoopScheduler:
    """A dry run: the plan is built and validated, no operator is called."""

    name = "noop"

    def run(
        self, plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions
    ) -> ExecutionResult:
        return ExecutionResult({}, plan=plan, stats=ExecutionStats("noop", 0.0, 0, 0))


def _dask_executor(options: ExecutionOptions) -> Any:
    from ._dask import DaskExecutor

    return DaskExecutor(options)


class DaskScheduler(EngineScheduler):
    """The plan as one Dask graph (`_dask_graph`); with `max_workers`, which Dask cannot
    honour per graph, the engine loop submitting ready calls to Dask (`DaskExecutor`).
    A jitted body's dynamic run always takes the latter (`make_executor`)."""

    fills_by_index = False  # from a cluster it fetches only the outputs asked for

    def __init__(self) -> None:
        super().__init__("dask", _dask_executor)

    def run(
        self, plan: ExecutionPlan, inputs: Mapping[str, Any], options: ExecutionOptions
    ) -> ExecutionResult:
        if options.max_workers is not None:
            return super().run(plan, inputs, options)
        from ._dask_graph import run_on_dask

        token = set_current_options(options)
        try:
            with intercept_calls(None):
                return run_on_dask(plan, inputs, options)
        finally:
            reset_current_options(token)


_registry: dict[str, Scheduler] = {
    "sequential": EngineScheduler("sequential", InlineExecutor),
    "parallel": EngineScheduler("parallel", ThreadExecutor),
    "wave": EngineScheduler("wave", ThreadExecutor, barrier=True),
    "noop": NoopScheduler(),
    "dask": DaskScheduler(),
}


def register_scheduler(name: str, scheduler: Scheduler, *, replace: bool = False) -> None:
    """Make `scheduler` available as `ExecutionOptions(scheduler=name)`."""
    if not isinstance(name, str) or not name:
        raise OptionsError(f"register_scheduler() needs a non-empty str name, got {name!r}")
    if not isinstance(scheduler, Scheduler):
        raise OptionsError(f"scheduler {name!r} must have a run(plan, inputs, options) method")
    if name in _registry and not replace:
        raise OptionsError(f"a scheduler named {name!r} exists; pass replace=True to override it")
    if name == "auto":
        raise OptionsError("'auto' is reserved: it picks parallel or sequential per graph")
    _registry[name] = scheduler


def available_schedulers() -> list[str]:
    """Registered scheduler names, plus `"auto"`."""
    return ["auto", *_registry]


def resolve_scheduler(
    spec: Any, plan: ExecutionPlan, options: ExecutionOptions | None = None
) -> Scheduler:
    """The scheduler `spec` names; `"auto"` looks at the plan's width and the deadlines.

    `"auto"` is `"parallel"` when the plan has two nodes that could run at once, or when
    `options` set a deadline (only threads let the loop stop waiting on a slow node at
    the deadline; the inline executor notices only when the call returns), else
    `"sequential"`.
    """
    if not isinstance(spec, str):
        return spec
    if spec == "auto":
        deadline = options is not None and (options.timeout_seconds or options.node_timeout_seconds)
        spec = "parallel" if plan.max_width > 1 or deadline else "sequential"
    try:
        return _registry[spec]
    except KeyError:
        close = difflib.get_close_matches(spec, available_schedulers(), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        unknown = OptionsError(
            f"unknown scheduler {spec!r}{hint}; choose one of "
            f"{', '.join(available_schedulers())} or register your own with register_scheduler()"
        )
        raise blame_environment("scheduler", spec, unknown) from None
