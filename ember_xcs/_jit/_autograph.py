"""`autograph()`: record the operator calls made in a block into a `Graph`.

Inside the block, operator calls are traced exactly as `jit` traces them (leaves are
recorded, composites are traced into, untraceable composites become one node) and return
placeholders; nothing runs. On exit the records become graph nodes, and data flow becomes
edges, using the `Graph`'s own edge language:

- a call's output passed as an argument: an edge mapping the whole output (`"*"`) to
  that parameter;
- `out["field"]` or `out.field` passed on: an edge mapping that field;
- anything else that mixes outputs (a list of answers, a dict of drafts, deeper
  indexing): a small *pack* node that builds the value from its inputs, and an edge from
  it;
- a concrete value (a prompt string, a number): not stored in the graph. It is a graph
  *input*, fed by parameter name or per node at `execute_graph` time, so the graph runs
  later with new inputs. `recording.inputs` holds the values seen while recording
  (`{node_id: {parameter: value}}`), which reproduce the recorded call.

!!! example
    ```python
    recording = xcs.autograph()
    with recording as graph:
        draft = write(question="What is XLA?")
        final = edit(draft=draft, style="short")
    xcs.execute_graph(graph, {"question": "What is MLIR?", "style": "short"})
    xcs.execute_graph(graph, recording.inputs)            # the recorded call again
    ```

Python code in the block that needs a placeholder's value (printing it, `if` on it) ends
the recording with a `TraceError` naming the file, line and value.
"""

from __future__ import annotations

import inspect
from typing import Any

from .._errors import TraceError
from ..graph import WHOLE_OUTPUT, Graph
from ..operators import FunctionOperator, intercept_calls, operator_signature
from ._symbols import NodeRef, ProjRef, TraceStop
from ._templates import Template, base_record, lower, refs_in, resolver
from ._tracer import NodeRecord, Tracer

__all__ = ["autograph"]


class autograph:  # noqa: N801 - used as a context manager, named like one
    """Record leaf-operator calls into a `Graph`; see the module docstring.

    **Arguments:**

    - `graph`: record into this graph instead of a new one.

    **Returns:** (from `with`) the `Graph` being recorded; `recording.inputs` holds the
    concrete values seen, by node id and parameter.

    **Raises:** `TraceError` when code in the block needs a placeholder's value.

    !!! example
        ```python
        @xcs.op
        def write(question: str) -> str:
            return f"draft about {question}"

        @xcs.op
        def edit(draft: str, style: str) -> str:
            return f"{style} {draft}"

        recording = xcs.autograph()
        with recording as graph:
            edit(draft=write(question="XLA"), style="short")
        result = xcs.execute_graph(graph, {"question": "MLIR", "style": "long"})
        assert list(result.values()) == ["long draft about MLIR"]
        ```
    """

    def __init__(self, graph: Graph | None = None):
        self.graph = graph if graph is not None else Graph()
        self.inputs: dict[str, dict[str, Any]] = {}
        self._tracer: Tracer | None = None
        self._scope: Any = None

    def __enter__(self) -> Graph:
        self._tracer = Tracer(fallback="plain")
        self._scope = intercept_calls(self._tracer)
        self._scope.__enter__()
        return self.graph

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        tracer = self._tracer
        self._scope.__exit__(exc_type, exc, tb)
        tracer.active = False
        stop = exc.reason if isinstance(exc, TraceStop) else tracer.scopes[0].stop
        if stop is not None:
            raise TraceError(f"autograph() could not record the block: {stop}") from None
        if exc is None:
            _Builder(self.graph, self.inputs).add_all(tracer.records)
        return False


class _Builder:
    """Turns records into nodes and edges of `graph`."""

    def __init__(self, graph: Graph, inputs: dict[str, dict[str, Any]]):
        self.graph = graph
        self.inputs = inputs
        self.ids: dict[int, str] = {}  # record index -> node id

    def add_all(self, records: list[NodeRecord]) -> None:
        for rec in records:
            self.ids[rec.index] = self._add(rec)

    def _add(self, rec: NodeRecord) -> str:
        node_id = self.graph.add_node(
            rec.operator,
            node_id=rec.node_id if rec.node_id not in self.graph else None,
            name=rec.name,
        )
        fed: set[tuple[str, str]] = set()
        for param, template in _bind_parameters(rec):
            self._feed(node_id, param, template, fed)
        return node_id

    def _feed(self, node_id: str, param: str, t: Template, fed: set[tuple[str, str]]) -> None:
        if t[0] == "c":
            self.inputs.setdefault(node_id, {})[param] = t[1]
            return
        if t[0] == "r":
            edge = self._direct_edge(t[1])
            if edge is not None and edge not in fed:
                fed.add(edge)
                src, field = edge
                self.graph.add_edge(src, node_id, field_mappings={field: param})
                return
        pack = self._pack(t)
        self.graph.add_edge(pack, node_id, field_mappings={WHOLE_OUTPUT: param})

    def _direct_edge(self, ref: Any) -> tuple[str, str] | None:
        if isinstance(ref, NodeRef):
            return self.ids[ref.record.index], WHOLE_OUTPUT
        if isinstance(ref, ProjRef) and isinstance(ref.base, NodeRef) and isinstance(ref.key, str):
            return self.ids[ref.base.record.index], ref.key
        return None

    def _pack(self, t: Template) -> str:
        """A node that builds `t` from the outputs it reads (passed as `in0`, `in1`, ...)."""
        sources: dict[int, str] = {}
        for ref in refs_in(t):
            node = base_record(ref)
            if node is None:
                raise TraceError("autograph() records operator calls only; inputs are concrete")
            sources.setdefault(node.record.index, f"in{len(sources)}")
        build = lower(t, resolver(lambda r: (sources[r.record.index], None), "pack"))
        pack = FunctionOperator(lambda **outputs: build(outputs, ()), name="pack")
        pack_id = self.graph.add_node(pack)
        for index, param in sources.items():
            self.graph.add_edge(self.ids[index], pack_id, field_mappings={WHOLE_OUTPUT: param})
        return pack_id


def _bind_parameters(rec: NodeRecord) -> list[tuple[str, Template]]:
    """`(parameter name, template)` for each argument of the recorded call."""
    try:
        params = list(operator_signature(rec.operator).parameters.values())
    except (TypeError, ValueError):
        params = []
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    bound = []
    for i, t in enumerate(rec.args):
        if i >= len(positional) or positional[i].kind is inspect.Parameter.POSITIONAL_ONLY:
            raise TraceError(
                f"autograph() cannot name argument {i} of {rec.name}: graph edges feed "
                "parameters by name; pass it as a keyword argument"
            )
        bound.append((positional[i].name, t))
    return bound + list(rec.kwargs)
