"""Plans: a finished trace compiled into an `ExecutionPlan` plus an output builder.

Every recorded leaf becomes a `PlanNode` whose `bind` rebuilds the operator's arguments
from the call's input leaves and the outputs of earlier nodes (see `_templates`). Runs of
numeric leaves are contracted into one `NumericSegment` node each (see `_numeric`). Opaque
composites run their `forward` with concrete values, as written or with dynamic dispatch;
either way each leaf call they make is a node of its own run (`_OpaqueComposite`).

`replay` hands a plan to the scheduler the options name, with the call's input leaves as
the only input; the jit's `PlanEntry` builds the function's return value from the node
outputs it returns by index. Nothing from the trace is replayed: symbols have no values, so every value in the
result was computed by this call.
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable
from typing import Any

from .._errors import NodeExecutionError, XCSError
from .._options import ExecutionOptions, current_options
from ..operators import KindMemo, Operator
from ..scheduling import (
    ExecutionPlan,
    ExecutionResult,
    PlanNode,
    resolve_scheduler,
)
from ._dynamic import run_dynamic
from ._numeric import NumericLeaves, NumericSegment, numeric_groups
from ._symbols import NodeRef
from ._templates import Getter, base_record, lower, refs_in, resolver
from ._tracer import NodeRecord, Trace

__all__ = ["INPUTS", "CompiledPlan", "build_plan", "replay"]

INPUTS = "__jit_inputs__"  # the one key of the inputs mapping a jit plan runs with


@dataclasses.dataclass(eq=False)
class CompiledPlan:
    """A plan, how to build the return value, and what the trace found."""

    plan: ExecutionPlan
    output: Getter
    leaf_calls: int
    opaque: list[NodeRecord]
    segments: list[NumericSegment]
    dynamic_numeric: list[NumericLeaves]  # of opaque composites run dynamically

    @property
    def own_code(self) -> frozenset[str]:
        """Nodes that run the user's own code (opaque composites), not a leaf operator."""
        return frozenset(rec.node_id for rec in self.opaque)

    def all_segments(self) -> list[NumericSegment]:
        """The plan's segments and those its dynamic composites compiled so far."""
        return self.segments + [s for leaves in self.dynamic_numeric for s in leaves.segments()]


def replay(
    plan: ExecutionPlan,
    inputs: dict[str, Any],
    options: ExecutionOptions,
    own_code: frozenset[str] = frozenset(),
) -> ExecutionResult:
    """Run `plan` on the scheduler `options` name; `result.by_index` holds every output.

    A function has one return value, so with `return_partial_results` the first failure
    is still raised. An error raised by the user's own code in a node of `own_code` (the
    body run as written, an opaque composite's `forward`) is raised as that code raised
    it, as the plain function would; leaf operators' errors name their node.
    """
    scheduler = resolve_scheduler(options.scheduler, plan, options)
    engine = getattr(scheduler, "fills_by_index", False)  # else: ask for every output
    error: BaseException | None = None
    try:
        result = scheduler.run(plan, inputs, options if engine else _all_outputs(options))
        if result.failures:
            error = next(iter(result.failures.values()))
    except NodeExecutionError as exc:
        error = exc
    if error is not None:
        raise _own_code_error(error, own_code) or error
    if result.by_index is None and result.stats.scheduler != "noop":  # a custom scheduler
        result.by_index = [result.get(node.node_id) for node in plan.nodes]
    return result


def _all_outputs(options: ExecutionOptions) -> ExecutionOptions:
    """Options asking a scheduler that is not the engine for every node's output."""
    return options.replace(include_intermediates=True)


def _own_code_error(error: BaseException, own_code: frozenset[str]) -> BaseException | None:
    cause = error.__cause__
    if (
        isinstance(error, NodeExecutionError)
        and error.node_id in own_code
        and cause is not None
        and not isinstance(cause, XCSError)
    ):
        return cause
    return None


class _OpaqueComposite(Operator):
    """Runs an opaque composite's `forward`: with dynamic dispatch (`"auto"`), or as
    written (`as_written`: `"structural"`). A plan node, never traced into
    (`composite = False`).

    Either way each leaf call it makes is a node of its own run, with the plan run's
    retries, node deadlines and node hooks, so the composite node itself is never retried
    (`__xcs_retried__`): a retry would call again the leaves that had succeeded. Its
    numeric leaves are compiled into `leaves` (kept with the plan; `None` as written);
    the graph hooks were already told about the plan run this node belongs to.
    """

    composite = False
    __xcs_retried__ = False

    def __init__(self, operator: Operator, leaves: NumericLeaves | None, as_written: bool):
        self.operator = operator
        self.leaves = leaves
        self.as_written = as_written

    @property
    def name(self) -> str:
        return self.operator.name

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return run_dynamic(
            self.operator.forward, args, kwargs, current_options(), numeric=self.leaves,
            graph_hooks=False, as_written=self.as_written,
        )[0]  # fmt: skip


def build_plan(trace: Trace, *, preserve_stochasticity: bool) -> CompiledPlan:
    """Compile `trace` into a `CompiledPlan`."""
    records = trace.records
    deps = [_deps(rec) for rec in records]
    kind = KindMemo()
    numeric = [
        rec.runner == "leaf" and kind(rec.operator).compiled and not preserve_stochasticity
        for rec in records
    ]
    group = numeric_groups(numeric, deps)
    units = _units(records, group)
    order = _topological(units, deps, group)
    slot: dict[int, tuple[int, int | None]] = {}  # record index -> (plan index, position)
    nodes: list[PlanNode] = []
    segments: list[NumericSegment] = []
    dynamic_numeric: list[NumericLeaves] = []
    consumers = _outside_consumers(records, deps, group, trace)
    for unit in order:
        members = units[unit]
        if numeric[unit]:
            node, segment = _segment_node(members, records, slot, consumers, len(nodes))
            segments.append(segment)
        else:
            node = _record_node(records[unit], deps[unit], slot, kind, preserve_stochasticity)
            slot[unit] = (len(nodes), None)
            if isinstance(node.operator, _OpaqueComposite) and node.operator.leaves:
                dynamic_numeric.append(node.operator.leaves)
        nodes.append(node)
    output = lower(trace.output, resolver(lambda r: slot[r.record.index], "output"))
    opaque = [rec for rec in records if rec.runner != "leaf"]
    plan = ExecutionPlan(nodes)
    return CompiledPlan(plan, output, len(records), opaque, segments, dynamic_numeric)


def _deps(rec: NodeRecord) -> list[int]:
    found: dict[int, None] = {}
    templates = [*rec.args, *(t for _, t in rec.kwargs)]
    for t in templates:
        for ref in refs_in(t):
            node = base_record(ref)
            if node is not None:
                found[node.record.index] = None
    return list(found)


def _units(records: list[NodeRecord], group: list[int]) -> dict[int, list[int]]:
    units: dict[int, list[int]] = {}
    for rec in records:
        units.setdefault(group[rec.index], []).append(rec.index)
    return units


def _topological(units: dict[int, list[int]], deps: list[list[int]], group: list[int]) -> list[int]:
    """Units in dependency order, ties broken by first record (Kahn with a heap)."""
    unit_deps = {u: {group[d] for m in ms for d in deps[m]} - {u} for u, ms in units.items()}
    waiting = {u: len(ds) for u, ds in unit_deps.items()}
    users: dict[int, list[int]] = {u: [] for u in units}
    for u, ds in unit_deps.items():
        for d in ds:
            users[d].append(u)
    ready = [u for u, n in waiting.items() if n == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        u = heapq.heappop(ready)
        order.append(u)
        for v in users[u]:
            waiting[v] -= 1
            if waiting[v] == 0:
                heapq.heappush(ready, v)
    return order


def _outside_consumers(
    records: list[NodeRecord], deps: list[list[int]], group: list[int], trace: Trace
) -> set[int]:
    """Records whose output is read outside their own segment (or by the output)."""
    used = {d for rec in records for d in deps[rec.index] if group[d] != group[rec.index]}
    for ref in refs_in(trace.output):
        node = base_record(ref)
        if node is not None:
            used.add(node.record.index)
    return used


def _record_node(
    rec: NodeRecord,
    rec_deps: list[int],
    slot: dict[int, tuple[int, int | None]],
    kind: KindMemo,
    preserve_stochasticity: bool,
) -> PlanNode:
    resolve = resolver(lambda r: slot[r.record.index], f"node {rec.node_id!r} ({rec.name})")
    operator = rec.operator
    if rec.runner == "dynamic":
        numeric = None if preserve_stochasticity else NumericLeaves()
        operator = _OpaqueComposite(rec.operator, numeric, as_written=False)
    elif rec.runner == "plain" and not kind(rec.operator).is_async:
        operator = _OpaqueComposite(rec.operator, None, as_written=True)
    bind = _bind(
        tuple(lower(t, resolve) for t in rec.args),
        tuple((k, lower(t, resolve)) for k, t in rec.kwargs),
    )
    deps = tuple(dict.fromkeys(slot[d][0] for d in rec_deps))
    return PlanNode(rec.node_id, rec.name, operator, deps, bind, kind(rec.operator).is_async)


def _bind(args: tuple[Getter, ...], kwargs: tuple[tuple[str, Getter], ...]) -> Callable:
    if not kwargs:

        def bind_args(results: list[Any], inputs: Any) -> tuple[list[Any], dict[str, Any]]:
            leaves = inputs[INPUTS]
            return [g(results, leaves) for g in args], {}

        return bind_args

    def bind(results: list[Any], inputs: Any) -> tuple[list[Any], dict[str, Any]]:
        leaves = inputs[INPUTS]
        return [g(results, leaves) for g in args], {k: g(results, leaves) for k, g in kwargs}

    return bind


def _segment_node(
    members: list[int],
    records: list[NodeRecord],
    slot: dict[int, tuple[int, int | None]],
    consumers: set[int],
    plan_index: int,
) -> tuple[PlanNode, NumericSegment]:
    """Contract `members` into one node; externals are whatever they read from outside."""
    inside = {m: j for j, m in enumerate(members)}
    externals: list[Any] = []  # refs read from outside, each once
    ext_index: dict[int, int] = {}

    def external(ref: Any) -> int:
        if id(ref) not in ext_index:
            ext_index[id(ref)] = len(externals)
            externals.append(ref)
        return ext_index[id(ref)]

    def local_slot(ref: NodeRef) -> tuple[int, None]:
        return (base + inside[ref.record.index], None)

    for m in members:  # externals first, so that `base` (their count) is known
        for t in [*records[m].args, *(t for _, t in records[m].kwargs)]:
            for ref in refs_in(t):
                node = base_record(ref)
                if node is None or node.record.index not in inside:
                    external(ref)  # a projection of an outside value is evaluated outside
    base = len(externals)
    inner_resolve = _inner_resolver(local_slot, ext_index)
    seg_members = []
    for m in members:
        rec = records[m]
        args = tuple(lower(t, inner_resolve) for t in rec.args)
        kwargs = tuple((k, lower(t, inner_resolve)) for k, t in rec.kwargs)
        seg_members.append((rec.operator, args, kwargs))
    outputs = [j for j, m in enumerate(members) if m in consumers]
    for pos, j in enumerate(outputs):
        slot[members[j]] = (plan_index, pos)
    names = "+".join(records[m].name for m in members)
    node_id = records[members[0]].node_id  # unique: the tracer issued it
    if len(members) > 1:
        node_id = f"numeric[{names}]@{node_id}"
    segment = NumericSegment(f"numeric({names})", seg_members, base, outputs)
    outer = resolver(lambda r: slot[r.record.index], f"node {node_id!r}")
    getters = tuple(lower(("r", ref), outer) for ref in externals)
    deps = tuple(
        dict.fromkeys(slot[n.record.index][0] for ref in externals if (n := base_record(ref)))
    )
    return PlanNode(node_id, segment.name, segment, deps, _bind(getters, ())), segment


def _inner_resolver(
    local_slot: Callable[[NodeRef], tuple[int, None]], ext_index: dict[int, int]
) -> Callable[[Any], Getter]:
    outer = resolver(local_slot, "numeric segment")

    def resolve(ref: Any) -> Getter:
        if id(ref) in ext_index:
            k = ext_index[id(ref)]
            return lambda R, L: R[k]
        return outer(ref)

    return resolve
