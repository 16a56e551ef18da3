"""Execution options: validation, the context manager, environment defaults, precedence,
and one test per `ExecutionOptions` field showing the engine consumes it."""

from __future__ import annotations

import asyncio
import dataclasses
import pickle
import threading
import types
from collections.abc import Iterator
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs import _options
from ember_xcs._options import current_options, reload_env_defaults
from ember_xcs.scheduling import _node_call, available_schedulers, resolve_scheduler


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """Set EMBER_XCS_* variables; the cached defaults are re-read after they are undone."""
    for name in list(_options._ENV_PARSERS):
        monkeypatch.delenv(name, raising=False)
    yield monkeypatch
    monkeypatch.undo()
    reload_env_defaults()


def wide_graph(body: Any, width: int = 4) -> xcs.Graph:
    g = xcs.Graph()
    for i in range(width):
        g.add_node(body, node_id=f"n{i}")
    return g


def read_options(attribute: str) -> xcs.Graph:
    return wide_graph(lambda: getattr(current_options(), attribute), width=3)


# --- validation ---------------------------------------------------------------------------------


def test_unknown_option_suggests_the_closest_name() -> None:
    with pytest.raises(xcs.OptionsError) as info, xcs.execution_options(max_worker=2):
        pass
    assert str(info.value).startswith(
        "unknown execution option 'max_worker' (did you mean 'max_workers'?); valid options "
        "are dask_client, graph_passes, hooks, include_intermediates, max_workers,"
    )


def test_unknown_option_without_a_close_match() -> None:
    with pytest.raises(xcs.OptionsError, match=r"^unknown execution option 'foo'; valid options"):
        with xcs.execution_options(foo=1):
            pass


def test_unknown_option_in_the_constructor_is_an_options_error() -> None:
    with pytest.raises(xcs.OptionsError, match=r"'timeout' \(did you mean 'timeout_seconds'\?\)"):
        xcs.ExecutionOptions(timeout=3)  # type: ignore[call-arg]


def test_replace_checks_names_and_returns_a_copy() -> None:
    base = xcs.ExecutionOptions()
    assert base.replace(retries=2).retries == 2 and base.retries == 0
    with pytest.raises(xcs.OptionsError, match="'retrys' \\(did you mean 'retries'\\?\\)"):
        base.replace(retrys=2)


def test_options_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        xcs.ExecutionOptions().retries = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"max_workers": 0}, "max_workers must be a positive int or None, got 0"),
        ({"max_workers": 2.5}, "max_workers must be a positive int or None, got 2.5"),
        ({"max_workers": True}, "max_workers must be a positive int or None, got True"),
        (
            {"timeout_seconds": 0},
            "timeout_seconds must be a finite positive number of seconds, "
            "or None for no limit, got 0",
        ),
        ({"timeout_seconds": "1"}, "timeout_seconds must be a finite positive number of seconds"),
        ({"node_timeout_seconds": -1}, "node_timeout_seconds must be a finite positive number"),
        (
            {"timeout_seconds": float("inf")},
            "timeout_seconds must be a finite positive number "
            "of seconds, or None for no limit, got inf; for no limit pass None",
        ),
        (
            {"node_timeout_seconds": float("inf")},
            "node_timeout_seconds must be a finite positive "
            "number of seconds, or None for no limit, got inf; for no limit pass None",
        ),
        (
            {"timeout_seconds": float("nan")},
            "timeout_seconds must be a finite positive number "
            "of seconds, or None for no limit, got nan",
        ),
        (
            {"node_timeout_seconds": 1e300},
            "node_timeout_seconds must be a finite positive "
            "number of seconds, or None for no limit, got 1e+300",
        ),
        ({"retries": -1}, "retries must be an int >= 0, got -1"),
        ({"retries": True}, "retries must be an int >= 0, got True"),
        (
            {"retry_backoff": -0.1},
            "retry_backoff must be a finite number of seconds >= 0, got -0.1",
        ),
        (
            {"retry_backoff": float("nan")},
            "retry_backoff must be a finite number of seconds >= 0, got nan",
        ),
        (
            {"retry_backoff": float("inf")},
            "retry_backoff must be a finite number of seconds >= 0, got inf",
        ),
        ({"retry_on": (ValueError, "x")}, "retry_on must hold exception types, got 'x'"),
        ({"retry_on": int}, "retry_on must hold exception types, got <class 'int'>"),
        ({"retry_on": 5}, "retry_on must be an exception type or a tuple of them, got 5"),
        ({"dask_client": 5}, "dask_client must be a distributed.Client, a scheduler address"),
        ({"dask_client": ""}, "dask_client must be a distributed.Client, a scheduler address"),
        ({"scheduler": ""}, "scheduler must be a scheduler name or an object with a run()"),
        ({"hooks": object()}, "hooks must be a sequence of ExecutionHooks"),
        ({"hooks": (None,)}, "hook None implements no event (no on_* method)"),
        ({"return_partial_results": "yes"}, "return_partial_results must be True or False"),
        ({"include_intermediates": 1}, "include_intermediates must be True or False, got 1"),
        ({"scheduler": 42}, "scheduler must be a scheduler name or an object with a run()"),
    ],
)
def test_invalid_values_are_rejected(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(xcs.OptionsError, match="^" + _escape(message)):
        xcs.ExecutionOptions(**overrides)
    with pytest.raises(xcs.OptionsError, match="^" + _escape(message)):
        with xcs.execution_options(**overrides):
            pass


def _escape(text: str) -> str:
    import re

    return re.escape(text)


def test_options_errors_are_value_errors_too() -> None:
    assert issubclass(xcs.OptionsError, ValueError) and issubclass(xcs.OptionsError, xcs.XCSError)


def test_retry_on_and_hooks_accept_a_single_item() -> None:
    hook = xcs.ExecutionHooks()
    options = xcs.ExecutionOptions(retry_on=ConnectionError, hooks=hook)
    assert options.retry_on == (ConnectionError,) and options.hooks == (hook,)
    assert xcs.ExecutionOptions(hooks=[hook]).hooks == (hook,)
    assert xcs.ExecutionOptions(hooks=None).hooks == ()


# --- the context manager ------------------------------------------------------------------------


def test_blocks_nest_and_restore_on_exit() -> None:
    outer_default = current_options()
    with xcs.execution_options(max_workers=4, retries=1) as outer:
        assert current_options() is outer
        with xcs.execution_options(max_workers=2) as inner:
            assert (inner.max_workers, inner.retries) == (2, 1)  # inherits what it does not set
            assert current_options() is inner
        assert current_options() is outer
    assert current_options() is outer_default


def test_blocks_restore_when_the_body_raises() -> None:
    before = current_options()
    with pytest.raises(RuntimeError, match="boom"):
        with xcs.execution_options(max_workers=4):
            with xcs.execution_options(retries=3):
                raise RuntimeError("boom")
    assert current_options() is before


def test_threads_have_independent_options() -> None:
    both_inside = threading.Barrier(2, timeout=10)
    seen: dict[str, int | None] = {}

    def worker(name: str, workers: int) -> None:
        with xcs.execution_options(max_workers=workers):
            both_inside.wait()  # both blocks are open at the same time
            seen[name] = current_options().max_workers
            both_inside.wait()
        seen[name + "-after"] = current_options().max_workers

    threads = [
        threading.Thread(target=worker, args=("a", 3)),
        threading.Thread(target=worker, args=("b", 7)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen == {"a": 3, "b": 7, "a-after": None, "b-after": None}


def test_asyncio_tasks_have_independent_options() -> None:
    async def task(workers: int, gate: asyncio.Barrier) -> int | None:
        with xcs.execution_options(max_workers=workers):
            await gate.wait()
            return current_options().max_workers

    async def main() -> list[int | None]:
        gate = asyncio.Barrier(2)
        return list(await asyncio.gather(task(3, gate), task(9, gate)))

    assert asyncio.run(main()) == [3, 9]


def test_context_options_are_visible_in_worker_threads() -> None:
    g = read_options("timeout_seconds")
    with xcs.execution_options(scheduler="parallel", timeout_seconds=30):
        result = xcs.execute_graph(g)
    assert set(result.values()) == {30}


def test_explicit_options_are_visible_in_worker_threads() -> None:
    g = read_options("retries")
    with xcs.execution_options(retries=1):
        result = xcs.execute_graph(g, options=xcs.ExecutionOptions(scheduler="parallel", retries=4))
    assert set(result.values()) == {4}


# --- environment and precedence ------------------------------------------------------------------


def test_environment_variables_set_the_defaults(env: pytest.MonkeyPatch) -> None:
    env.setenv("EMBER_XCS_SCHEDULER", "sequential")
    env.setenv("EMBER_XCS_MAX_WORKERS", "3")
    env.setenv("EMBER_XCS_TIMEOUT_SECONDS", "2.5")
    env.setenv("EMBER_XCS_RETRIES", "2")
    defaults = reload_env_defaults()
    assert (defaults.scheduler, defaults.max_workers) == ("sequential", 3)
    assert (defaults.timeout_seconds, defaults.retries) == (2.5, 2)
    assert current_options() is defaults
    result = xcs.execute_graph(wide_graph(lambda: threading.current_thread().name))
    assert result.stats.scheduler == "sequential"
    assert set(result.values()) == {threading.current_thread().name}


def test_environment_is_read_once_until_reloaded(env: pytest.MonkeyPatch) -> None:
    reload_env_defaults()
    env.setenv("EMBER_XCS_MAX_WORKERS", "5")
    assert current_options().max_workers is None
    assert reload_env_defaults().max_workers == 5


def test_empty_environment_variables_are_ignored(env: pytest.MonkeyPatch) -> None:
    env.setenv("EMBER_XCS_MAX_WORKERS", "")
    assert reload_env_defaults().max_workers is None


@pytest.mark.parametrize(
    ("var", "raw", "message"),
    [
        (
            "EMBER_XCS_MAX_WORKERS",
            "many",
            "environment variable EMBER_XCS_MAX_WORKERS='many' is not a valid max_workers; "
            "fix or unset it",
        ),
        (
            "EMBER_XCS_MAX_WORKERS",
            "0",
            "environment variable EMBER_XCS_MAX_WORKERS='0' is not a valid max_workers: "
            "max_workers must be a positive int or None, got 0; fix or unset it",
        ),
        (
            "EMBER_XCS_TIMEOUT_SECONDS",
            "inf",
            "environment variable EMBER_XCS_TIMEOUT_SECONDS='inf' is not a valid "
            "timeout_seconds: timeout_seconds must be a finite positive number of seconds, or "
            "None for no limit, got inf; for no limit pass None; fix or unset it",
        ),
        (
            "EMBER_XCS_TIMEOUT_SECONDS",
            "soon",
            "environment variable EMBER_XCS_TIMEOUT_SECONDS='soon' is not a valid "
            "timeout_seconds; fix or unset it",
        ),
        (
            "EMBER_XCS_RETRIES",
            "-2",
            "environment variable EMBER_XCS_RETRIES='-2' is not a valid retries: retries must "
            "be an int >= 0, got -2; fix or unset it",
        ),
    ],
)
def test_invalid_environment_variables_name_the_variable(
    env: pytest.MonkeyPatch, var: str, raw: str, message: str
) -> None:
    env.setenv(var, raw)
    with pytest.raises(xcs.OptionsError) as info:
        reload_env_defaults()
    assert str(info.value) == message


def test_an_unknown_scheduler_in_the_environment_names_the_variable(
    env: pytest.MonkeyPatch,
) -> None:
    # the name is looked up when a run starts (a scheduler registered after the variables
    # are read still counts), so reading the variables accepts it and the run refuses it
    env.setenv("EMBER_XCS_SCHEDULER", "paralel")
    assert reload_env_defaults().scheduler == "paralel"
    with pytest.raises(xcs.OptionsError) as info:
        xcs.execute_graph(wide_graph(lambda: 1))
    assert str(info.value) == (
        "environment variable EMBER_XCS_SCHEDULER='paralel' is not a valid scheduler: "
        "unknown scheduler 'paralel' (did you mean 'parallel'?); choose one of "
        f"{', '.join(available_schedulers())} or register your own with "
        "register_scheduler(); fix or unset it"
    )
    shout = xcs.op(str.upper)
    with pytest.raises(xcs.OptionsError, match="^environment variable EMBER_XCS_SCHEDULER="):
        xcs.jit(lambda q: [shout(q), shout(q + "!")])("why")


def test_a_scheduler_registered_after_the_environment_is_read_can_be_named_there(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("EMBER_XCS_SCHEDULER", "test_options_late")
    reload_env_defaults()
    runs: list[int] = []

    class Late:
        def run(self, plan: Any, inputs: Any, options: Any) -> xcs.ExecutionResult:
            runs.append(len(plan))
            return resolve_scheduler("sequential", plan).run(plan, inputs, options)

    xcs.register_scheduler("test_options_late", Late(), replace=True)
    assert xcs.execute_graph(wide_graph(lambda: 1)) == {f"n{i}": 1 for i in range(4)}
    assert runs == [4]


def test_explicit_beats_context_beats_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("EMBER_XCS_MAX_WORKERS", "3")
    reload_env_defaults()
    g = read_options("max_workers")
    parallel = xcs.ExecutionOptions(scheduler="parallel")
    assert set(xcs.execute_graph(g).values()) == {3}
    with xcs.execution_options(max_workers=5):
        assert set(xcs.execute_graph(g).values()) == {5}
        explicit = parallel.replace(max_workers=7)
        assert set(xcs.execute_graph(g, options=explicit).values()) == {7}
    # explicit options replace the context entirely: unset fields take their defaults
    with xcs.execution_options(retries=2):
        assert xcs.execute_graph(read_options("retries"), options=parallel)["n0"] == 0


# --- every field has a consumer -------------------------------------------------------------------

FIELD_TESTS = {
    "scheduler": "test_scheduler_option_picks_the_scheduler",
    "max_workers": "test_max_workers_option_caps_concurrency",
    "timeout_seconds": "test_timeout_seconds_option_bounds_the_run",
    "node_timeout_seconds": "test_node_timeout_seconds_option_bounds_each_node",
    "return_partial_results": "test_return_partial_results_option_keeps_completed_outputs",
    "retries": "test_retries_option_reruns_failing_nodes",
    "retry_backoff": "test_retry_backoff_option_sets_the_first_delay",
    "retry_on": "test_retry_on_option_filters_retried_errors",
    "hooks": "test_hooks_option_receives_events",
    "include_intermediates": "test_include_intermediates_option_returns_every_node",
    "dask_client": "test_dask_client_option_is_the_client_used",
    "progress": "test_progress_option_adds_a_progress_bar_hook",
    "graph_passes": "test_graph_passes_option_merges_equal_pure_calls",
}


def test_every_option_field_has_a_consumer_test() -> None:
    fields = {f.name for f in dataclasses.fields(xcs.ExecutionOptions)}
    assert fields == set(FIELD_TESTS), "add a test for each new ExecutionOptions field"
    for test_name in FIELD_TESTS.values():
        assert callable(globals().get(test_name)), test_name


def test_progress_option_adds_a_progress_bar_hook() -> None:
    # what the bar draws, and when, is tested in tests/test_progress.py
    hooks = xcs.ExecutionOptions(progress=True).hooks
    assert [type(h).__name__ for h in hooks] == ["ProgressHooks"]


def test_scheduler_option_picks_the_scheduler() -> None:
    g = wide_graph(lambda: 1)
    for name in ("sequential", "parallel", "wave"):
        with xcs.execution_options(scheduler=name):
            assert xcs.execute_graph(g).stats.scheduler == name


def test_max_workers_option_caps_concurrency() -> None:
    lock, state = threading.Lock(), {"now": 0, "peak": 0}

    def unit() -> None:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        threading.Event().wait(0.002)
        with lock:
            state["now"] -= 1

    with xcs.execution_options(scheduler="parallel", max_workers=3):
        result = xcs.execute_graph(wide_graph(unit, width=24))
    assert state["peak"] <= 3 and result.stats.max_in_flight <= 3


def test_timeout_seconds_option_bounds_the_run() -> None:
    release = threading.Event()
    g = wide_graph(lambda: release.wait(5), width=1)
    try:
        with xcs.execution_options(scheduler="parallel", timeout_seconds=0.05):
            with pytest.raises(xcs.ExecutionTimeoutError) as info:
                xcs.execute_graph(g)
    finally:
        release.set()
    assert info.value.running == ["n0"]


def test_node_timeout_seconds_option_bounds_each_node() -> None:
    release = threading.Event()
    g = xcs.Graph()
    g.add_node(lambda: "quick", node_id="quick")
    g.add_node(lambda: release.wait(5), node_id="stuck")
    try:
        with xcs.execution_options(
            scheduler="parallel", node_timeout_seconds=0.05, return_partial_results=True
        ):
            result = xcs.execute_graph(g)
    finally:
        release.set()
    assert dict(result) == {"quick": "quick"}
    assert isinstance(result.failures["stuck"], xcs.ExecutionTimeoutError)


def test_return_partial_results_option_keeps_completed_outputs() -> None:
    g = xcs.Graph()
    g.add_node(lambda: 1 / 0, node_id="bad")
    g.add_node(lambda: "good", node_id="good")
    with xcs.execution_options(return_partial_results=True):
        result = xcs.execute_graph(g)
    assert dict(result) == {"good": "good"} and list(result.failures) == ["bad"]
    with pytest.raises(xcs.NodeExecutionError):
        xcs.execute_graph(g)


def _counting_failure(fail_times: int, error: type[Exception] = ConnectionError) -> Any:
    calls = []

    def flaky() -> int:
        calls.append(1)
        if len(calls) <= fail_times:
            raise error("blip")
        return len(calls)

    return flaky, calls


def test_retries_option_reruns_failing_nodes() -> None:
    flaky, calls = _counting_failure(2)
    g = wide_graph(flaky, width=1)
    with xcs.execution_options(retries=2, retry_backoff=0):
        assert xcs.execute_graph(g) == {"n0": 3}
    assert len(calls) == 3


def test_retry_backoff_option_sets_the_first_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(
        _node_call, "time", types.SimpleNamespace(sleep=slept.append, perf_counter=lambda: 0.0)
    )
    flaky, _ = _counting_failure(2)
    with xcs.execution_options(scheduler="sequential", retries=2, retry_backoff=0.3):
        xcs.execute_graph(wide_graph(flaky, width=1))
    assert slept == [0.3, 0.6]


def test_retry_on_option_filters_retried_errors() -> None:
    flaky, calls = _counting_failure(1, error=KeyError)
    with xcs.execution_options(retries=3, retry_backoff=0, retry_on=(ConnectionError,)):
        with pytest.raises(xcs.NodeExecutionError):
            xcs.execute_graph(wide_graph(flaky, width=1))
    assert len(calls) == 1


def test_hooks_option_receives_events() -> None:
    timeline = xcs.Timeline()
    with xcs.execution_options(scheduler="parallel", hooks=timeline):
        xcs.execute_graph(wide_graph(lambda: 1, width=5))
    assert sorted(r.node_id for r in timeline.records) == [f"n{i}" for i in range(5)]
    assert all(r.ok and r.end >= r.start and r.attempt == 0 for r in timeline.records)


class EndCounter(xcs.ExecutionHooks):
    """A plain keyword hook, picklable (defined at module level)."""

    def __init__(self) -> None:
        self.ends: list[tuple[str, float]] = []

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        self.ends.append((node_id, seconds))


def test_keyword_hooks_get_every_node_end_with_its_duration() -> None:
    hook = EndCounter()
    xcs.execute_graph(wide_graph(lambda: 1, width=3), options=xcs.ExecutionOptions(hooks=hook))
    assert sorted(node_id for node_id, _ in hook.ends) == ["n0", "n1", "n2"]
    assert all(seconds >= 0 for _, seconds in hook.ends)


def test_options_that_ran_still_pickle_and_the_copy_runs() -> None:
    options = xcs.ExecutionOptions(hooks=EndCounter())
    xcs.execute_graph(wide_graph(lambda: 1, width=2), options=options)
    copy = pickle.loads(pickle.dumps(options))  # the hook table is not part of the pickle
    xcs.execute_graph(wide_graph(lambda: 1, width=2), options=copy)
    assert len(copy.hooks[0].ends) == 4  # its earlier two, pickled with it, and two more
    assert len(options.hooks[0].ends) == 2


def test_no_node_calls_without_hooks() -> None:
    nothing = ((), (), (), False, None, ())  # NodeCall then reads no clock and calls nothing
    assert _options.node_hook_calls(xcs.ExecutionOptions()) == nothing
    assert _options.node_hook_calls(xcs.ExecutionOptions(hooks=xcs.ExecutionHooks())) == nothing


def test_include_intermediates_option_returns_every_node() -> None:
    g = xcs.Graph()
    g.add_node(lambda: 1, node_id="a")
    g.add_node(lambda x: x + 1, node_id="b")
    g.connect("a", "b")
    assert xcs.execute_graph(g) == {"b": 2}
    with xcs.execution_options(include_intermediates=True):
        assert xcs.execute_graph(g) == {"a": 1, "b": 2}


def test_dask_client_option_is_the_client_used() -> None:
    distributed = pytest.importorskip("distributed")
    with distributed.Client(
        processes=False, n_workers=1, dashboard_address=":0", set_as_default=False
    ) as client:
        g = xcs.Graph()
        g.add_node(lambda: distributed.get_worker().scheduler.address, node_id="where")
        with xcs.execution_options(scheduler="dask", dask_client=client):
            assert xcs.execute_graph(g) == {"where": client.scheduler.address}


def test_graph_passes_option_merges_equal_pure_calls() -> None:
    calls = []
    g = wide_graph(xcs.op(lambda: calls.append(1) or 7, pure=True))
    with xcs.execution_options(graph_passes=("merge_common_subexpressions",)):
        result = xcs.execute_graph(g)
    assert result == {f"n{i}": 7 for i in range(4)} and len(calls) == 1
    assert len(result.stats.graph_passes.merged) == 3
