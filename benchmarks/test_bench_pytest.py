"""pytest-benchmark entry points for the suite's headline cases.

Run with `pytest -n 0 benchmarks/ --benchmark-only` (they are outside `testpaths`, so the
normal test run skips them). They reuse the suite's programs and contenders
(`ember_xcs_bench`), check answers on every call, and leave statistics to
pytest-benchmark; `ember-xcs bench` remains the source of `RESULTS.md`.
"""

from __future__ import annotations

import itertools

import pytest

from ember_xcs_bench import _variants as variants
from ember_xcs_bench._baselines import asyncio_gather, threadpool
from ember_xcs_bench._case import Case, Runner, build_case, same
from ember_xcs_bench._programs import Layered
from ember_xcs_bench._scenarios import ensemble_depth2


def _grid() -> Case:
    return build_case("noop-grid-2000", lambda _: Layered(40, 50), 0.0, inputs=lambda k: 7 + k)


def _checked(runner: Runner, case: Case):  # noqa: ANN202
    counter = itertools.count()

    def call() -> None:
        x = case.inputs(next(counter))
        assert same(runner.call(x), case.expected(x))

    return call


@pytest.mark.parametrize("scheduler", ["sequential", "parallel"])
def test_noop_grid_per_node_overhead(benchmark, scheduler):
    case = _grid()
    runner = variants.graph(scheduler)(case)
    benchmark.extra_info["nodes"] = case.nodes
    benchmark(_checked(runner, case))


@pytest.mark.parametrize("make", [threadpool, asyncio_gather], ids=["threadpool", "asyncio"])
def test_noop_grid_baselines(benchmark, make):
    case = _grid()
    runner = make(case)
    try:
        benchmark(_checked(runner, case))
    finally:
        runner.close()


@pytest.mark.parametrize("mode", ["auto", "trace"])
def test_noop_grid_jit_replay(benchmark, mode):
    case = _grid()
    runner = variants.jit(mode)(case)
    runner.call(case.inputs(-1))  # the first call traces; the benchmark times replays
    benchmark(_checked(runner, case))


@pytest.mark.parametrize("contender", ["graph: parallel", "jit: auto", "asyncio"])
def test_ensemble_depth2_at_5ms(benchmark, contender):
    case = build_case("ensemble-depth2", ensemble_depth2, 0.005)
    makers = {
        "graph: parallel": variants.graph("parallel"),
        "jit: auto": variants.jit("auto"),
        "asyncio": asyncio_gather,
    }
    runner = makers[contender](case)
    runner.call(case.inputs(-1))
    benchmark.extra_info["critical_path_s"] = case.cp_seconds
    try:
        benchmark.pedantic(_checked(runner, case), rounds=10, warmup_rounds=1)
    finally:
        runner.close()
