"""Execution options: different settings for different parts of a program, failures, retries.

Purpose: options come from an explicit `ExecutionOptions`, else the innermost
`execution_options(...)` block, else `EMBER_XCS_*` environment variables, else defaults.
Blocks nest and are per thread, so one part of a program can run with 2 workers and
another sequentially. Then: a flaky operator retried, a failing one returning partial
results, and a deadline.

Features: `xcs.execution_options` (nested), `xcs.ExecutionOptions` (`max_workers`,
`scheduler`, `retries`, `retry_on`, `return_partial_results`, `timeout_seconds`),
`ExecutionResult.failures` / `.skipped`, `NodeExecutionError`, `ExecutionTimeoutError`.

How to run:

    python examples/basic/06_execution_options.py
"""

# expect: ^outer block: at most 2 in flight$
# expect: ^inner block: sequential, at most 1 in flight$
# expect: ^explicit options win: parallel, at most 6 in flight$
# expect: ^retried: 'ok' after 3 attempts$
# expect: ^partial: \['call_0', 'call_1', 'call_2', 'call_3', 'call_4', 'call_5'\] done, failed \['broken'\], skipped \['report'\]$
# expect: ^timeout: still running \['stuck'\]$

import time

import ember_xcs as xcs


@xcs.op
def call(prompt: str) -> str:
    time.sleep(0.02)  # an LLM call
    return prompt.upper()


graph = xcs.Graph()
for i in range(6):
    graph.add_node(call, node_id=f"call_{i}")

with xcs.execution_options(max_workers=2):
    print(
        f"outer block: at most {xcs.execute_graph(graph, {'prompt': 'hi'}).stats.max_in_flight} in flight"
    )
    with xcs.execution_options(
        scheduler="sequential"
    ):  # max_workers=2 still applies
        stats = xcs.execute_graph(graph, {"prompt": "hi"}).stats
        print(
            f"inner block: {stats.scheduler}, at most {stats.max_in_flight} in flight"
        )
    explicit = xcs.ExecutionOptions(
        scheduler="parallel"
    )  # used whole: max_workers default
    stats = xcs.execute_graph(graph, {"prompt": "hi"}, options=explicit).stats
    print(
        f"explicit options win: {stats.scheduler}, at most {stats.max_in_flight} in flight"
    )

attempts = []


@xcs.op
def flaky(prompt: str) -> str:
    attempts.append(prompt)
    if len(attempts) < 3:
        raise ConnectionError("429 Too Many Requests")
    return "ok"


retrying = xcs.Graph()
retrying.add_node(flaky, node_id="flaky")
options = xcs.ExecutionOptions(
    retries=3, retry_backoff=0.01, retry_on=ConnectionError
)
print(
    f"retried: {xcs.execute_graph(retrying, {'prompt': 'hi'}, options=options)['flaky']!r} after {len(attempts)} attempts"
)


@xcs.op
def broken(prompt: str) -> str:
    raise ValueError("cannot parse")


@xcs.op
def report(text: str) -> str:
    return text


graph.add_node(broken, node_id="broken")
graph.add_node(report, node_id="report")
graph.add_edge("broken", "report")
partial = xcs.execute_graph(
    graph,
    {"prompt": "hi"},
    options=xcs.ExecutionOptions(return_partial_results=True),
)
print(
    f"partial: {sorted(partial)} done, failed {list(partial.failures)}, skipped {partial.skipped}"
)


@xcs.op
def slow(prompt: str, delay: float) -> str:
    time.sleep(delay)
    return prompt


deadline = xcs.Graph()
deadline.add_node(slow, node_id="quick")
deadline.add_node(slow, node_id="stuck")
try:
    xcs.execute_graph(
        deadline,
        {"prompt": "hi", "quick": {"delay": 0.0}, "stuck": {"delay": 0.3}},
        options=xcs.ExecutionOptions(timeout_seconds=0.1),
    )
except xcs.ExecutionTimeoutError as error:
    print("timeout: still running", error.running)
