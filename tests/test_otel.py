"""OpenTelemetry spans: one per run, one per node attempt, parented across threads.

Spans go to the SDK's `InMemorySpanExporter`. Parallelism is proven with barriers (a
barrier of N parties opens only with N calls in flight), so "parented correctly across
worker threads" is checked on calls that really ran on different threads at once.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import ember_xcs as xcs
from ember_xcs.models import SimulatedModel
from ember_xcs.scheduling import OpenTelemetryHooks, annotate_node


@pytest.fixture
def otel():
    """(hooks, exporter, tracer) on a private provider, so tests do not share spans."""
    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield OpenTelemetryHooks(provider), exporter, provider.get_tracer("test")
    provider.shutdown()


def spans_named(exporter, name):
    return [s for s in exporter.get_finished_spans() if s.name == name]


def parent_id(span):
    return span.parent.span_id if span.parent is not None else None


def barrier_op(parties, name="call"):
    barrier = threading.Barrier(parties, timeout=10)

    def call(prompt: str) -> str:
        barrier.wait()
        return f"{prompt}!"

    return xcs.op(call, name=name), barrier


def test_jitted_call_with_ten_parallel_nodes_parents_every_node_span_on_the_run_span(otel):
    hooks, exporter, _ = otel
    call, _ = barrier_op(10)

    @xcs.op
    def join(answers: list) -> int:
        return len(answers)

    @xcs.jit
    def ensemble(prompt):
        return join([call(f"{prompt}{i}") for i in range(10)])

    with xcs.execution_options(hooks=(hooks,), scheduler="parallel"):
        assert ensemble("q") == 10  # the barrier opened: ten calls were in flight at once
        exporter.clear()  # the first call traced; check a cached replay
        assert ensemble("r") == 10
    runs = spans_named(exporter, "ember_xcs.run")
    nodes = spans_named(exporter, "call")
    assert len(runs) == 1 and len(nodes) == 10
    run = runs[0]
    assert {parent_id(s) for s in nodes} == {run.context.span_id}
    assert {s.context.trace_id for s in nodes} == {run.context.trace_id}
    assert len({s.attributes["ember_xcs.node_id"] for s in nodes}) == 10
    assert {s.attributes["ember_xcs.operator"] for s in nodes} == {"call"}
    assert {s.attributes["ember_xcs.attempt"] for s in nodes} == {0}
    assert run.attributes["ember_xcs.scheduler"] == "parallel"
    (joined,) = spans_named(exporter, "join")
    assert parent_id(joined) == run.context.span_id


def test_explicit_graph_run_span_is_a_child_of_the_callers_span(otel):
    hooks, exporter, tracer = otel
    call, _ = barrier_op(3)
    graph = xcs.Graph()
    for i in range(3):
        graph.add_node(call, node_id=f"n{i}")
    with tracer.start_as_current_span("request") as request:
        xcs.execute_graph(graph, {"prompt": "p"}, options=xcs.ExecutionOptions(hooks=(hooks,)))
    (run,) = spans_named(exporter, "ember_xcs.run")
    assert parent_id(run) == request.get_span_context().span_id
    assert {parent_id(s) for s in spans_named(exporter, "call")} == {run.context.span_id}
    assert trace.get_current_span() is trace.INVALID_SPAN  # nothing left attached


def test_a_run_nested_in_a_node_is_a_child_of_that_nodes_span(otel):
    hooks, exporter, _ = otel
    leaf, _ = barrier_op(2, name="leaf")
    inner = xcs.Graph()
    inner.add_node(leaf, node_id="a")
    inner.add_node(leaf, node_id="b")
    inner_options = xcs.ExecutionOptions(hooks=(hooks,), scheduler="parallel")

    @xcs.op
    def outer(prompt: str) -> int:
        return len(xcs.execute_graph(inner, {"prompt": prompt}, options=inner_options))

    graph = xcs.Graph()
    graph.add_node(outer, node_id="o1")
    graph.add_node(outer, node_id="o2")
    for scheduler in ("parallel", "sequential"):  # outer nodes on workers, or on this thread
        exporter.clear()
        options = xcs.ExecutionOptions(hooks=(hooks,), scheduler=scheduler)
        xcs.execute_graph(graph, {"prompt": "p"}, options=options)
        runs = spans_named(exporter, "ember_xcs.run")
        outers = {s.context.span_id for s in spans_named(exporter, "outer")}
        (top,) = [r for r in runs if r.parent is None]
        nested = [r for r in runs if r.parent is not None]
        assert {parent_id(s) for s in spans_named(exporter, "outer")} == {top.context.span_id}
        assert len(nested) == 2 and {parent_id(r) for r in nested} == outers
        for run in nested:  # each inner run holds its own two leaves
            leaves = [
                s for s in spans_named(exporter, "leaf") if parent_id(s) == run.context.span_id
            ]
            assert len(leaves) == 2


def test_async_nodes_on_the_event_loop_are_children_of_the_run(otel):
    hooks, exporter, _ = otel

    @xcs.op
    async def fetch(prompt: str) -> str:
        await asyncio.sleep(0.001)
        return prompt

    graph = xcs.Graph()
    for i in range(4):
        graph.add_node(fetch, node_id=f"f{i}")
    xcs.execute_graph(graph, {"prompt": "p"}, options=xcs.ExecutionOptions(hooks=(hooks,)))
    (run,) = spans_named(exporter, "ember_xcs.run")
    fetched = spans_named(exporter, "fetch")
    assert len(fetched) == 4
    assert {parent_id(s) for s in fetched} == {run.context.span_id}


def test_failed_attempts_have_error_status_and_retries_count_attempts(otel):
    hooks, exporter, _ = otel
    calls = []

    @xcs.op
    def flaky(prompt: str) -> str:
        calls.append(prompt)
        if len(calls) < 3:
            raise ConnectionError("secret-token-123 leaked?")
        return prompt

    graph = xcs.Graph()
    graph.add_node(flaky, node_id="f")
    options = xcs.ExecutionOptions(hooks=(hooks,), retries=2, retry_backoff=0)
    xcs.execute_graph(graph, {"prompt": "p"}, options=options)
    attempts = sorted(
        spans_named(exporter, "flaky"), key=lambda s: s.attributes["ember_xcs.attempt"]
    )
    assert [s.attributes["ember_xcs.attempt"] for s in attempts] == [0, 1, 2]
    assert [s.status.status_code for s in attempts] == [
        StatusCode.ERROR,
        StatusCode.ERROR,
        StatusCode.UNSET,
    ]
    assert attempts[0].attributes["exception.type"] == "ConnectionError"
    assert attempts[0].attributes["ember_xcs.will_retry"] is True
    texts = [repr(dict(s.attributes)) + str(s.status.description) for s in attempts]
    assert not any("secret-token" in t for t in texts)  # messages may quote inputs: not kept


def test_failed_run_span_has_error_status(otel):
    hooks, exporter, _ = otel

    @xcs.op
    def broken(prompt: str) -> str:
        raise ValueError("no")

    graph = xcs.Graph()
    graph.add_node(broken, node_id="b")
    with pytest.raises(xcs.NodeExecutionError):
        xcs.execute_graph(graph, {"prompt": "p"}, options=xcs.ExecutionOptions(hooks=(hooks,)))
    (run,) = spans_named(exporter, "ember_xcs.run")
    assert run.status.status_code is StatusCode.ERROR


def test_annotate_node_adds_model_and_tokens_to_the_node_span(otel):
    hooks, exporter, _ = otel
    model = SimulatedModel("sim-1", latency=0)

    @xcs.op
    def ask(prompt: str) -> str:
        response = model.complete(prompt)
        annotate_node(
            model=model.name,
            input_tokens=response.usage.prompt_tokens,
            output_tokens=response.usage.completion_tokens,
            route="primary",
        )
        return response.text

    graph = xcs.Graph()
    graph.add_node(ask, node_id="a")
    xcs.execute_graph(
        graph, {"prompt": "hello there"}, options=xcs.ExecutionOptions(hooks=(hooks,))
    )
    (span,) = spans_named(exporter, "ask")
    assert span.attributes["gen_ai.request.model"] == "sim-1"
    assert span.attributes["gen_ai.usage.input_tokens"] > 0
    assert span.attributes["gen_ai.usage.output_tokens"] > 0
    assert span.attributes["ember_xcs.route"] == "primary"


def test_annotate_node_outside_a_recorded_node_does_nothing():
    annotate_node(model="m")  # no hook listening: no error, nothing kept


def test_vmap_batch_items_are_children_of_the_batch_run(otel):
    hooks, exporter, _ = otel
    call, _ = barrier_op(4)
    with xcs.execution_options(hooks=(hooks,)):
        assert xcs.vmap(call)(["a", "b", "c", "d"]) == ["a!", "b!", "c!", "d!"]
    (run,) = spans_named(exporter, "ember_xcs.run")
    assert {parent_id(s) for s in spans_named(exporter, "call")} == {run.context.span_id}


def test_without_opentelemetry_the_hooks_say_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if it were not installed
    with pytest.raises(ImportError, match=r"pip install 'ember_xcs\[otel\]'"):
        OpenTelemetryHooks()
