"""Plugging in your own scheduler: a new executor, and a scheduler that wraps another.

1. `TwoLaneExecutor` runs node calls on its own two threads. `EngineScheduler` puts it
   under the shared engine loop, so dependencies, priorities, retries, timeouts and
   partial results all work unchanged; `register_scheduler` gives it a name.
2. `BudgetScheduler` follows the `Scheduler` protocol directly (a `run` method): it
   refuses plans with more calls than a budget allows and hands the rest to another
   scheduler object.

    python examples/advanced/15_custom_scheduler.py
"""

# expect: ^two_lanes gives the same results as sequential: True$
# expect: ^most calls in flight: 2$
# expect: ^threads used: lane_0, lane_1$
# expect: ^retried on two_lanes: \{'flaky': 'ok after 2 failures'\}$
# expect: ^budget refused: plan has 12 calls, budget is 10$
# expect: ^budget allowed: 6 calls on two_lanes$

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import ember_xcs as xcs


class TwoLaneExecutor:
    """An executor: run each call on one of two threads and report back on `done`."""

    capacity = (
        2  # the engine never has more than this many calls in flight here
    )

    def __init__(self, options: xcs.ExecutionOptions):
        self._pool = ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="lane"
        )

    def submit(self, index: int, call: Any, done: Any) -> None:
        def run() -> None:
            try:
                done.put(
                    (index, True, call())
                )  # call() does retries, backoff and hooks
            except (
                BaseException
            ) as exc:  # the engine decides what a failure means
                done.put((index, False, exc))

        self._pool.submit(run)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class BudgetScheduler:
    """A `Scheduler`: refuse plans with too many calls, run the rest on `inner`."""

    def __init__(self, inner: xcs.Scheduler, max_calls: int):
        self.inner = inner
        self.max_calls = max_calls

    def run(
        self,
        plan: xcs.ExecutionPlan,
        inputs: Mapping[str, Any],
        options: xcs.ExecutionOptions,
    ) -> xcs.ExecutionResult:
        if len(plan) > self.max_calls:
            raise xcs.ExecutionError(
                f"plan has {len(plan)} calls, budget is {self.max_calls}; "
                "raise the budget or split the graph"
            )
        return self.inner.run(plan, inputs, options)


@xcs.op
def call_model(prompt: str) -> str:
    time.sleep(0.02)
    return f"{prompt}!"


@xcs.op
def gather(*replies: str) -> int:
    return len(replies)


def fan_in(width: int) -> xcs.Graph:
    graph = xcs.Graph()
    graph.add_node(gather, node_id="gather")
    for i in range(width):
        graph.add_edge(
            graph.add_node(call_model, node_id=f"call_{i}"), "gather"
        )
    return graph


def main() -> None:
    two_lanes = xcs.EngineScheduler("two_lanes", TwoLaneExecutor)
    xcs.register_scheduler("two_lanes", two_lanes)

    graph = fan_in(7)
    timeline = xcs.Timeline()
    with xcs.execution_options(scheduler="two_lanes", hooks=(timeline,)):
        laned = xcs.execute_graph(graph, {"prompt": "hi"})
    baseline = xcs.execute_graph(
        graph,
        {"prompt": "hi"},
        options=xcs.ExecutionOptions(scheduler="sequential"),
    )
    print(
        "two_lanes gives the same results as sequential:",
        dict(laned) == dict(baseline),
    )
    print("most calls in flight:", laned.stats.max_in_flight)
    threads = sorted({record.thread for record in timeline.records})
    print("threads used:", ", ".join(threads))

    failures = []

    @xcs.op
    def flaky() -> str:
        if len(failures) < 2:
            failures.append(time.perf_counter())
            raise ConnectionError("try again")
        return f"ok after {len(failures)} failures"

    retrying = xcs.Graph()
    retrying.add_node(flaky, node_id="flaky")
    options = xcs.ExecutionOptions(
        scheduler="two_lanes", retries=2, retry_backoff=0.001
    )
    print(
        "retried on two_lanes:",
        dict(xcs.execute_graph(retrying, {}, options=options)),
    )

    budget = BudgetScheduler(two_lanes, max_calls=10)
    try:
        xcs.execute_graph(
            fan_in(11),
            {"prompt": "hi"},
            options=xcs.ExecutionOptions(scheduler=budget),
        )
    except xcs.ExecutionError as error:
        print("budget refused:", str(error).split(";")[0])
    small = xcs.execute_graph(
        fan_in(5),
        {"prompt": "hi"},
        options=xcs.ExecutionOptions(scheduler=budget),
    )
    print(
        f"budget allowed: {small.stats.nodes_run} calls on {small.stats.scheduler}"
    )


if __name__ == "__main__":
    main()
