"""Strategies: choosing, per input signature, how a jitted call runs.

`select` runs once per cache miss and returns the cache entry for that signature:

- `PlanEntry`: the trace succeeded (possibly with opaque composites); every call replays
  the plan on the scheduler with the new inputs. Strategy `TRACE` when every node is a
  leaf, `STRUCTURAL` when some composite is an opaque node (or the mode says so).
- `DynamicEntry`: the function's own code stopped the trace because it needed a value
  (or `mode="dynamic"`); every call runs the body with asynchronous leaf dispatch.
- `PlainEntry`: the trace stopped on an unexpected exception (or in `structural` mode):
  the function runs as written, so the answer is the plain function's. It is not a node:
  each leaf call it makes is one (`run_dynamic(..., as_written=True)`), so retries,
  node deadlines and hooks apply per call and the body never runs twice.

The order is the strength of each: a plan knows the whole graph before anything runs;
dynamic dispatch still overlaps independent calls but re-runs the Python body; running
as written is always right and overlaps nothing. `auto` takes the strongest one the trace
allows and never one that could change the answer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import time
from collections.abc import Callable, Iterator
from typing import Any

import jax

from .._errors import TraceError
from .._options import ExecutionOptions
from ..operators import FunctionOperator, Operator
from ..scheduling import ExecutionPlan, ExecutionStats, PlanNode
from ._dynamic import run_dynamic
from ._keys import StructureGuard, input_labels, is_constant_leaf, restore_statics
from ._modes import STRATEGIES, JitConfig, JITMode
from ._numeric import NumericLeaves, NumericSegment
from ._plans import INPUTS, CompiledPlan, build_plan, replay
from ._rewrite import describe, entry, rewritten_forward
from ._serial import Serialness
from ._symbols import StopReason, TraceStop
from ._tracer import Tracer

__all__ = ["DynamicEntry", "PlainEntry", "PlanEntry", "Target", "select"]


@dataclasses.dataclass(eq=False)
class Target:
    """What is jitted: `call` is traced or run dynamically, `plain` runs it as written."""

    name: str
    call: Callable[..., Any]
    plain: Callable[..., Any]
    signature_of: Callable[..., Any]
    root: Operator | None = None


@dataclasses.dataclass(eq=False)
class PlanEntry:
    strategy: JITMode
    compiled: CompiledPlan
    signature: str
    guard: StructureGuard | None = None  # a jitted operator's traced composites
    considered: tuple[tuple[str, str], ...] = ()  # (strategy, why it was or was not chosen)

    def run(self, target: Target, leaves: list[Any], args: Any, kwargs: Any,
            options: ExecutionOptions) -> tuple[Any, ExecutionStats]:  # fmt: skip
        compiled = self.compiled
        if not compiled.plan.nodes and not options.hooks and options.scheduler != "noop":
            return compiled.output({}, leaves), ExecutionStats("none", 0.0, 0, 0)  # no calls
        result = replay(compiled.plan, {INPUTS: leaves}, options, compiled.own_code)
        if result.stats.scheduler == "noop":
            return result, result.stats
        return compiled.output(result.by_index, leaves), result.stats

    def segments(self) -> list[NumericSegment]:
        return self.compiled.all_segments()

    def explain(self) -> str:
        c = self.compiled
        lines = [
            f"{self.strategy.value}: {c.leaf_calls} leaf calls -> plan of {len(c.plan)} nodes, "
            f"critical path {c.plan.critical_path_length}, max width {c.plan.max_width}, "
            f"{len(c.segments)} numeric segment(s)"
        ]
        for rec in c.opaque:
            how = "with dynamic dispatch" if rec.runner == "dynamic" else "as written"
            lines.append(f"  opaque node {rec.node_id!r} ({rec.name}) runs {how}: {rec.reason}")
        return "\n".join(lines + _eager_lines(c.all_segments()))


@dataclasses.dataclass(eq=False)
class DynamicEntry:
    reason: StopReason | None
    signature: str
    numeric: NumericLeaves | None  # compiled numeric leaves; None: preserve_stochasticity
    strategy: JITMode = JITMode.DYNAMIC
    considered: tuple[tuple[str, str], ...] = ()
    body: Any = None  # what ran: `explain` says whether it was rewritten (`_rewrite`)
    serialness: Serialness = dataclasses.field(default_factory=Serialness)

    def run(self, target: Target, leaves: list[Any], args: Any, kwargs: Any,
            options: ExecutionOptions) -> tuple[Any, ExecutionStats]:  # fmt: skip
        self.body = target.call
        return run_dynamic(
            target.call, args, kwargs, options, numeric=self.numeric, serialness=self.serialness
        )

    def segments(self) -> list[NumericSegment]:
        return self.numeric.segments() if self.numeric is not None else []

    def explain(self) -> str:
        if self.reason is None:
            lines = ["dynamic: mode='dynamic' was requested"]
        else:
            lines = [
                "dynamic: the trace stopped because Python needed a value; the body runs "
                "every call with leaf calls dispatched asynchronously.",
                f"  trace stop: {self.reason}",
            ]
        if self.body is not None:
            lines += [f"  {line}" for line in describe(self.body).splitlines()]
        serial = self.serialness.describe()
        if serial is not None:
            lines.append(f"  {serial}")
        return "\n".join(lines + _eager_lines(self.segments()))


@dataclasses.dataclass(eq=False)
class PlainEntry:
    reason: StopReason
    signature: str
    plan: ExecutionPlan
    strategy: JITMode = JITMode.STRUCTURAL
    considered: tuple[tuple[str, str], ...] = ()

    def run(self, target: Target, leaves: list[Any], args: Any, kwargs: Any,
            options: ExecutionOptions) -> tuple[Any, ExecutionStats]:  # fmt: skip
        if options.scheduler == "noop":  # a dry run: the plan of one node, the body
            return (result := replay(self.plan, {INPUTS: (args, kwargs)}, options)), result.stats
        # The body is not a node: each leaf call it makes is one, with the run's retries,
        # deadlines and hooks, as in a dynamic run; only the body's own code runs as written.
        return run_dynamic(target.plain, args, kwargs, options, numeric=None, as_written=True)

    def segments(self) -> list[NumericSegment]:
        return []

    def explain(self) -> str:
        return (
            "structural: the call runs as written (no overlap; each leaf call is a node), "
            f"because the trace stopped.\n  trace stop: {self.reason}"
        )


Entry = PlanEntry | DynamicEntry | PlainEntry


def _eager_lines(segments: list[NumericSegment]) -> list[str]:
    """One line per numeric segment that fell back to running eagerly, with why."""
    return [
        f"  {seg.name} runs eagerly (not traceable by JAX): {seg.eager_reason}"
        for seg in segments
        if seg.eager_reason
    ]


def select(
    target: Target,
    config: JitConfig,
    key: Any,
    leaves: list[Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    on_trace: Callable[[float, str], None],
) -> Entry:
    """Trace once for this signature and return the entry that will serve it.

    Every strategy is considered in order of strength (`STRATEGIES`); the entry records
    why each one was or was not chosen, for `explain_jit_selection`.
    """
    signature = describe_signature(key)
    why: dict[str, str] = {}
    if config.mode is JITMode.DYNAMIC:
        why.update(trace="not tried: mode='dynamic'", structural="not tried: mode='dynamic'")
        why.update(plain="not needed")
        return _chosen(DynamicEntry(None, signature, _numeric_leaves(config)), "dynamic", why)
    tracer = Tracer(fallback=_composite_fallback(config), root=target.root)
    tracer.forward_of = rewritten_forward
    start = time.perf_counter()
    with _gc_paused():
        sym_args, sym_kwargs = _symbolic_inputs(tracer, target, key, leaves, args, kwargs)
        try:
            trace = tracer.trace(entry(target.call), sym_args, sym_kwargs, target.name)
        except TraceStop as stop:
            on_trace(time.perf_counter() - start, f"trace stopped: {stop.reason}")
            return _fallback(target, config, stop.reason, signature, why)
        compiled = build_plan(trace, preserve_stochasticity=config.preserve_stochasticity)
    on_trace(
        time.perf_counter() - start,
        f"traced {compiled.leaf_calls} leaf calls into {len(compiled.plan)} nodes",
    )
    strategy = JITMode.TRACE
    if compiled.opaque or config.mode is JITMode.STRUCTURAL:
        why["trace"] = (
            "the trace holds opaque composites" if compiled.opaque else "mode='structural'"
        )
        strategy = JITMode.STRUCTURAL
    if strategy.value in config.disabled:
        why[strategy.value] = "traced, but disabled by disable_strategies"
        # the function traces, so running it dynamically is exact: prefer that to as-written
        reason = StopReason("value", f"the {strategy.value} strategy is disabled", "")
        return _fallback(target, config, reason, signature, why)
    return _chosen(PlanEntry(strategy, compiled, signature), strategy.value, why)


def _composite_fallback(config: JitConfig) -> str | None:
    """How the tracer runs a composite it cannot trace (see `Tracer`)."""
    if config.mode is JITMode.TRACE or config.strict:
        return None
    if config.mode is JITMode.STRUCTURAL or "dynamic" in config.disabled:
        return None if "plain" in config.disabled else "plain"
    return "auto"


def _chosen(entry: Entry, name: str, why: dict[str, str]) -> Entry:
    why[name] = "chosen"
    for other in STRATEGIES:
        why.setdefault(other, "not needed: a stronger strategy applies")
    entry.considered = tuple((s, why[s]) for s in STRATEGIES)
    return entry


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Tracing allocates many small objects that all survive; CPython's generational
    collector would rescan the whole heap repeatedly and make tracing superlinear
    (10,000 calls: ~2x slower per call than 1,000). Collection resumes afterwards."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _fallback(
    target: Target, config: JitConfig, reason: StopReason, signature: str, why: dict[str, str]
) -> Entry:
    """The strongest strategy left once the plan is out, or `TraceError` if none is."""
    if config.strict:
        raise TraceError(
            f"jit({target.name}, mode={config.mode.value!r}, strict=True) could not trace the "
            f"call: {reason}"
        )
    for name in ("trace", "structural"):
        why.setdefault(name, f"the trace stopped: {reason}")
    dynamic_first = config.mode is not JITMode.STRUCTURAL and reason.kind == "value"
    order = ["dynamic", "plain"] if dynamic_first else ["plain", "dynamic"]
    for name in order:
        if name in config.disabled:
            why[name] = "disabled by disable_strategies"
        elif name == "dynamic" and config.mode is JITMode.STRUCTURAL:
            why[name] = "mode='structural' never runs dynamically"
        elif name == "dynamic":
            return _chosen(DynamicEntry(reason, signature, _numeric_leaves(config)), name, why)
        else:
            return _chosen(PlainEntry(reason, signature, _plain_plan(target)), name, why)
    listed = "; ".join(f"{name}: {text}" for name, text in why.items())
    raise TraceError(
        f"jit({target.name}) has no strategy left for this call ({listed}); enable one with "
        "disable_strategies=... or change the function so that it traces"
    )


def _numeric_leaves(config: JitConfig) -> NumericLeaves | None:
    return None if config.preserve_stochasticity else NumericLeaves()


def _plain_plan(target: Target) -> ExecutionPlan:
    operator = FunctionOperator(target.plain, name=target.name)

    def bind(results: list[Any], inputs: Any) -> tuple[Any, dict[str, Any]]:
        return inputs[INPUTS]

    return ExecutionPlan([PlanNode(target.name, target.name, operator, (), bind)])


def _symbolic_inputs(
    tracer: Tracer, target: Target, key: Any, leaves: list[Any],
    args: tuple[Any, ...], kwargs: dict[str, Any],
) -> tuple[tuple[Any, ...], dict[str, Any]]:  # fmt: skip
    labels = input_labels(target.signature_of, args, kwargs)
    symbols = [
        leaf if is_constant_leaf(leaf) else tracer.input_symbol(i, labels[i], leaf)
        for i, leaf in enumerate(leaves)
    ]
    sym_args, sym_kwargs = jax.tree_util.tree_unflatten(key[0], symbols)
    return restore_statics(sym_args, sym_kwargs, key[2])


def describe_signature(key: Any) -> str:
    """A short readable form of a cache key, for `explain_jit_selection`."""
    parts = []
    for k in key[1]:
        if isinstance(k, type):
            parts.append(k.__name__)
        elif k[0] == "const":
            parts.append(getattr(k[1], "name", None) or type(k[1]).__name__)
        else:
            parts.append(f"{k[2]}{list(k[1])}")
    statics = f", static={dict(key[2])}" if key[2] else ""
    text = f"({', '.join(parts)}{statics})"
    return text if len(text) <= 160 else text[:157] + "..."
