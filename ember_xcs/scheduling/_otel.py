"""`OpenTelemetryHooks`: a span per run and per node attempt, parented across threads.

Install the extra (`pip install 'ember_xcs[otel]'`: `opentelemetry-api` and
`opentelemetry-sdk`) and pass an instance in `hooks=`. Every run becomes a span named
`ember_xcs.run`, and every node attempt a child span named after its operator, with
attributes `ember_xcs.node_id`, `ember_xcs.operator`, `ember_xcs.attempt` and, when the
operator reported them with `annotate_node`, `gen_ai.request.model`,
`gen_ai.usage.input_tokens` and `gen_ai.usage.output_tokens` (OpenTelemetry's GenAI
names). A failed attempt gets status ERROR with the exception's type (not its message,
which may quote inputs).

**Parenting.** A run span's parent is whatever span is current where the run starts (the
caller's own span, or the node span of the node that started a nested run). A node span's
parent is its run's span. Finding the run from a worker thread needs no engine support:

1. the node's context is a copy of the context its run's executor captured, so if the
   engine captured it after `on_graph_start` made the run span current, the current span
   *is* the run span;
2. otherwise the current span is the one that was current when the run started, i.e. the
   run span's parent, and the run is the live run started under that parent (the latest
   one, if several are live under the same parent at once).

While a node attempt runs, its span is the current span in that context, so spans the
operator opens itself, and runs nested inside it, are its children: the event loop runs
an `async def` node in a task with its own copy of the context, so the same holds there.
"""

from __future__ import annotations

import threading
from typing import Any

from ._annotations import close_annotations, open_annotations
from ._hooks import ExecutionHooks

__all__ = ["OpenTelemetryHooks"]

_GEN_AI = {
    "model": "gen_ai.request.model",
    "input_tokens": "gen_ai.usage.input_tokens",
    "output_tokens": "gen_ai.usage.output_tokens",
}


def _import_otel() -> tuple[Any, Any]:
    try:
        from opentelemetry import context, trace
    except ImportError:
        raise ImportError(
            "OpenTelemetryHooks needs opentelemetry-api; run `pip install 'ember_xcs[otel]'`"
        ) from None
    return context, trace


class OpenTelemetryHooks(ExecutionHooks):
    """Emit OpenTelemetry spans for runs and node attempts (see the module docs).

    **Arguments:**

    - `tracer_provider`: the provider to get the tracer from (default: the global one,
      as set by `opentelemetry.trace.set_tracer_provider`).
    - `tracer`: a tracer to use as it is (overrides `tracer_provider`).
    """

    def __init__(self, tracer_provider: Any = None, *, tracer: Any = None) -> None:
        self._context, self._trace = _import_otel()
        self._tracer = tracer or self._trace.get_tracer(
            "ember_xcs", tracer_provider=tracer_provider
        )
        self._live: dict[int, Any] = {}  # span id -> live run span
        self._by_parent: dict[int, list[Any]] = {}  # parent span id (0: none) -> live runs
        self._open_runs: dict[int, list[tuple[Any, Any, int]]] = {}  # thread -> stack
        self._nodes: dict[tuple[str, int], tuple[Any, Any, dict[str, Any], Any]] = {}
        self._lock = threading.Lock()

    # --- runs --------------------------------------------------------------------------------

    def on_graph_start(self, *, num_nodes: int, scheduler: str) -> None:
        parent = _span_id(self._trace.get_current_span())
        span = self._tracer.start_span(
            "ember_xcs.run",
            attributes={"ember_xcs.scheduler": scheduler, "ember_xcs.num_nodes": num_nodes},
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        with self._lock:
            self._live[_span_id(span)] = span
            self._by_parent.setdefault(parent, []).append(span)
        self._open_runs.setdefault(threading.get_ident(), []).append((span, token, parent))

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        opened = self._open_runs.get(threading.get_ident())
        if not opened:
            return
        span, token, parent = opened.pop()
        with self._lock:
            self._live.pop(_span_id(span), None)
            siblings = self._by_parent.get(parent, [])
            siblings.remove(span)
            if not siblings:
                self._by_parent.pop(parent, None)
        span.set_attribute("ember_xcs.num_nodes", num_nodes)
        if failed:
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, "run failed"))
        span.end()
        self._context.detach(token)

    # --- nodes -------------------------------------------------------------------------------

    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        run = self._run_here()
        parent = self._trace.set_span_in_context(run) if run is not None else None
        span = self._tracer.start_span(
            name,
            context=parent,
            attributes={
                "ember_xcs.node_id": node_id,
                "ember_xcs.operator": name,
                "ember_xcs.attempt": attempt,
            },
        )
        token = self._context.attach(self._trace.set_span_in_context(span))
        annotations, annotated = open_annotations()
        self._nodes[(node_id, threading.get_ident())] = (span, token, annotations, annotated)

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        self._end_node(node_id, None)

    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        self._end_node(node_id, error, will_retry)

    def _end_node(self, node_id: str, error: BaseException | None, retry: bool = False) -> None:
        found = self._nodes.pop((node_id, threading.get_ident()), None)
        if found is None:
            return
        span, token, annotations, annotated = found
        close_annotations(annotated)
        for key, value in annotations.items():
            span.set_attribute(_GEN_AI.get(key, f"ember_xcs.{key}"), value)
        if error is not None:
            kind = type(error).__name__
            span.set_attribute("exception.type", kind)
            span.set_attribute("ember_xcs.will_retry", retry)
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, kind))
        span.end()
        self._context.detach(token)

    def _run_here(self) -> Any:
        """The live run span this node belongs to (see the module docs), or None."""
        current = _span_id(self._trace.get_current_span())
        with self._lock:
            run = self._live.get(current)
            if run is None:
                under = self._by_parent.get(current)
                run = under[-1] if under else None
        return run


def _span_id(span: Any) -> int:
    context = span.get_span_context()
    return context.span_id if context.is_valid else 0
