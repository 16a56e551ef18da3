"""Promises the guide pages make in prose, checked the way a user would try them.

The code blocks of `docs/` run in `tests/test_docs.py`; these tests take the sentences
around them (a default, an error and what its message says, an option's effect, a
variation a reader tries next) from docs/execution.md, graphs.md, models.md,
observability.md, errors.md and transforms.md, one test per promise.
"""

from __future__ import annotations

import contextvars
import dataclasses
import io
import re
import threading
from pathlib import Path
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.scheduling import ProgressHooks

DOCS = Path(__file__).resolve().parent.parent / "docs"

# --- graphs.md: how inputs reach nodes ---------------------------------------------------------


@xcs.op
def answer(question: str, style: str = "short") -> str:
    return f"{style}: {question}"


@xcs.op
def echo(answer: str) -> str:
    return answer


def answer_then_echo() -> xcs.Graph:
    """Two unconnected nodes; `echo` has a parameter named like the node `answer`."""
    graph = xcs.Graph()
    graph.add_node(answer, node_id="answer")
    graph.add_node(echo, node_id="echo")
    return graph


def test_a_parameter_named_like_a_node_id_is_fed_by_that_nodes_own_inputs() -> None:
    result = xcs.execute_graph(
        answer_then_echo(), {"question": "why?", "echo": {"answer": "given"}}
    )
    assert dict(result) == {"answer": "short: why?", "echo": "given"}


def test_a_node_whose_own_parameter_shares_its_id_takes_it_from_its_own_inputs() -> None:
    graph = xcs.Graph()
    graph.add_node(answer, node_id="question")
    result = xcs.execute_graph(graph, {"question": {"question": "why?"}})
    assert result["question"] == "short: why?"


def test_an_unfed_parameter_named_like_a_node_id_is_a_missing_input_before_anything_runs() -> None:
    with pytest.raises(xcs.MissingInputError, match=r"echo\.answer") as info:
        xcs.execute_graph(answer_then_echo(), {"question": "why?"})
    assert "only inputs['echo'] = {'answer': ...} feeds it" in str(info.value)


# --- graphs.md: marking nodes; errors.md: op's arguments ----------------------------------------


def test_op_refuses_a_pure_flag_that_is_not_a_bool_like_its_other_flags() -> None:
    with pytest.raises(TypeError, match=r"op\(pure=\.\.\.\) must be True or False, got 'yes'"):
        xcs.op(lambda: 1, pure="yes")


def test_a_stochastic_operator_marked_pure_is_an_options_error() -> None:
    with pytest.raises(xcs.OptionsError, match="contradict each other") as info:
        xcs.op(lambda: 1, pure=True, stochastic=True)
    assert isinstance(info.value, ValueError)  # as before, and now an XCSError too


# --- models.md: SimulatedModel ---------------------------------------------------------------


@pytest.mark.parametrize("latency", [-1, (0.2, 0.1), "fast", float("nan"), (0.1,)])
def test_a_simulated_latency_that_is_not_seconds_is_refused_when_the_model_is_built(
    latency: object,
) -> None:
    with pytest.raises(models.ModelConfigError, match="latency must be seconds >= 0"):
        models.SimulatedModel(latency=latency)


@pytest.mark.parametrize("latency", [0, 0.001, (0.0, 0.001), lambda rng: 0.0])
def test_a_simulated_latency_is_a_number_a_range_or_a_function_of_a_random(
    latency: object,
) -> None:
    model = models.SimulatedModel(latency=latency, responses=["ok"])
    assert model.complete("q").text == "ok"


def test_track_usage_counts_a_users_thread_only_when_it_runs_in_a_copy_of_the_context() -> None:
    model = models.SimulatedModel()
    with models.track_usage() as usage:
        bare = threading.Thread(target=model.complete, args=("not counted",))
        copied = threading.Thread(
            target=contextvars.copy_context().run, args=(model.complete, "counted")
        )
        for thread in (bare, copied):
            thread.start()
            thread.join()
    assert (usage.calls, model.calls) == (1, 2)


# --- execution.md: the options table -----------------------------------------------------------


def test_the_options_table_lists_every_execution_option_with_its_default() -> None:
    page = (DOCS / "execution.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", page, re.MULTILINE))
    defaults = xcs.ExecutionOptions()
    for field in dataclasses.fields(xcs.ExecutionOptions):
        assert field.name in rows, field.name
        assert eval(rows[field.name]) == getattr(defaults, field.name), field.name  # noqa: S307


# --- observability.md: progress bars -------------------------------------------------------


def test_a_progress_hook_given_a_stream_that_is_not_a_terminal_draws_nothing() -> None:
    stream = io.StringIO()  # a log file or a pipe: isatty() is False
    graph = xcs.Graph()
    for i in range(3):
        graph.add_node(answer, node_id=f"answer_{i}")
    hooks = (ProgressHooks(0, file=stream),)
    result = xcs.execute_graph(graph, {"question": "q"}, options=xcs.ExecutionOptions(hooks=hooks))
    assert len(result) == 3 and stream.getvalue() == ""


# --- execution.md: custom schedulers --------------------------------------------------------


class Counting:
    """A scheduler that runs nothing and reports the plan's size."""

    def run(self, plan: Any, inputs: Any, options: Any) -> xcs.ExecutionResult:
        return xcs.ExecutionResult(
            {"nodes": len(plan)}, plan=plan, stats=xcs.ExecutionStats("counting", 0.0, 0, 0)
        )


@pytest.mark.parametrize("name", ["", 5, None])
def test_register_scheduler_refuses_a_name_that_options_could_never_name(name: Any) -> None:
    with pytest.raises(xcs.OptionsError, match="needs a non-empty str name"):
        xcs.register_scheduler(name, Counting())


def test_a_registered_scheduler_name_needs_replace_to_be_taken_again() -> None:
    name = "docs_promises_b_counting"
    xcs.register_scheduler(name, Counting(), replace=True)
    with pytest.raises(xcs.OptionsError, match="pass replace=True"):
        xcs.register_scheduler(name, Counting())
    with xcs.execution_options(scheduler=name):
        inputs = {"question": "q", "echo": {"answer": "a"}}
        assert xcs.execute_graph(answer_then_echo(), inputs) == {"nodes": 2}


# --- execution.md: Dask ------------------------------------------------------------------------


def test_dask_runs_retries_in_the_task_and_skips_a_failed_nodes_dependents() -> None:
    distributed = pytest.importorskip("distributed")
    attempts: list[int] = []

    @xcs.op
    def flaky(x: int) -> int:
        attempts.append(x)
        if len(attempts) < 3:
            raise ConnectionError("rate limited")
        return x + 1

    @xcs.op
    def broken(x: int) -> int:
        raise ValueError("broken")

    graph = xcs.Graph()
    graph.add_node(flaky, node_id="flaky")
    graph.add_node(broken, node_id="broken")
    graph.add_node(echo, node_id="after_flaky")
    graph.add_node(echo, node_id="after_broken")
    graph.connect("flaky", "after_flaky").connect("broken", "after_broken")
    timeline = xcs.Timeline()
    with distributed.Client(processes=False, dashboard_address=":0") as client:
        options = xcs.ExecutionOptions(
            scheduler="dask",
            dask_client=client,
            retries=3,
            retry_backoff=0.001,
            retry_on=ConnectionError,
            return_partial_results=True,
            hooks=(timeline,),
        )
        result = xcs.execute_graph(graph, {"x": 1}, options=options)
    assert dict(result) == {"flaky": 2, "after_flaky": 2}
    assert list(result.failures) == ["broken"] and result.skipped == ["after_broken"]
    assert isinstance(result.failures["broken"], ValueError)  # and a NodeExecutionError
    assert result.stats.scheduler == "dask"
    outcomes = sorted((r.node_id, r.attempt, r.outcome) for r in timeline.records)
    assert outcomes == [
        ("after_flaky", 0, "ok"),
        ("broken", 0, "failed"),
        ("flaky", 0, "retried"),
        ("flaky", 1, "retried"),
        ("flaky", 2, "ok"),
    ]


class Locked(xcs.Operator):
    """A leaf holding a lock: it cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def forward(self, x: int) -> int:
        with self.lock:
            return x


@pytest.mark.slow
def test_an_operator_a_cluster_process_cannot_receive_is_an_execution_error_naming_it() -> None:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0"
    )
    try:
        with distributed.Client(cluster, set_as_default=False) as client:
            graph = xcs.Graph()
            graph.add_node(Locked(), node_id="locked")
            options = xcs.ExecutionOptions(scheduler="dask", dask_client=client)
            with pytest.raises(xcs.ExecutionError, match=r"node 'locked' \(Locked\) cannot be"):
                xcs.execute_graph(graph, {"x": 1}, options=options)
    finally:
        cluster.close()


# --- transforms.md: pmap and mesh_sharded of Python operators ----------------------------------


@xcs.op
def fails_on_five_and_seven(i: int) -> int:
    if i in (5, 7):
        raise ValueError(f"bad item {i}")
    return i


def test_python_pmap_with_partial_results_raises_listing_every_failed_item() -> None:
    with xcs.execution_options(return_partial_results=True):
        with pytest.raises(xcs.ExecutionError) as info:
            xcs.pmap(fails_on_five_and_seven)(list(range(10)))
    message = str(info.value)
    assert "fails_on_five_and_seven[5], fails_on_five_and_seven[7]" in message


def test_python_mesh_sharded_joins_dict_outputs_per_key_in_input_order() -> None:
    mesh = xcs.DeviceMesh((2, 4), ("data", "model"))

    @xcs.op
    def describe(items: list) -> dict:
        return {"length": [len(s) for s in items], "upper": [s.upper() for s in items]}

    sharded = xcs.mesh_sharded(
        describe, mesh, in_specs=xcs.PartitionSpec("data"), out_specs=xcs.PartitionSpec("data")
    )
    words = ["a", "bb", "ccc", "dd", "e", "ff", "g", "hhh", "i", "jj"]
    assert sharded(words) == {
        "length": [len(w) for w in words],
        "upper": [w.upper() for w in words],
    }
