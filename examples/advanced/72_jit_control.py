"""jit control and introspection: rule strategies out, see why one was chosen, read the
timings, watch a router stop dispatching, watch the engine, and find the path that led
to a failure.

A summariser builds its prompt with an f-string, which stops a trace, so jit runs it
dynamically. Ruling `dynamic` out runs it as written instead; `explain_jit_selection`
lists every strategy with why it was or was not chosen, and `get_jit_stats` reports call
times, compile seconds per strategy and the cached signatures. A router that uses each
answer before its next call overlaps nothing, so after a few calls its calls run at
once on the caller's thread (a serial run). `engine_status()` is read
while a run is in flight, and a failing node's error carries the nodes that fed it.

Features: `jit(disable_strategies=...)`, `explain_jit_selection`, `get_jit_stats`
(`call_seconds_p50`, `compile_seconds`, `signatures`), `on_compile_start` and
`on_cache_evict` hooks, `engine_status()`, `NodeExecutionError.path`.

    python examples/advanced/72_jit_control.py
"""

# expect: ^answer: SUMMARY OF WHY IS THE SKY BLUE\?$
# expect: ^    - dynamic: disabled by disable_strategies$
# expect: ^    - plain: chosen$
# expect: ^stats: 3 calls, strategies compiled: \['structural'\], signatures: \['\(str\)'\]$
# expect: ^hooks: compile_start, compile_start, cache_evict$
# expect: ^router: serial: calls run at once on the body's thread
# expect: ^engine while running: 1 run\(s\), 2 running, 1 queued$
# expect: ^failure at score after: load -> clean$

from __future__ import annotations

import threading
from typing import Any

import ember_xcs as xcs


@xcs.op
def summarise(prompt: str) -> str:
    return prompt.upper()


def summary(question: str) -> str:
    return summarise(f"summary of {question}")  # the f-string stops the trace


careful = xcs.jit(summary, disable_strategies="dynamic")
print("answer:", careful("why is the sky blue?"))
print("\n".join(xcs.explain_jit_selection(careful).splitlines()[-2:]))
careful("and why is grass green?")
careful("what is XLA?")
stats = xcs.get_jit_stats(careful)
assert 0 < stats.call_seconds_p50 <= stats.call_seconds_p95
print(
    f"stats: {stats.calls} calls, strategies compiled: {list(stats.compile_seconds)}, "
    f"signatures: {list(stats.signatures)}"
)


class CompileEvents(xcs.ExecutionHooks):
    def __init__(self) -> None:
        self.events: list[str] = []

    def on_compile_start(self, *, target: str, key: Any) -> None:
        self.events.append("compile_start")

    def on_cache_evict(self, *, target: str, key: Any) -> None:
        self.events.append("cache_evict")


events = CompileEvents()
small_cache = xcs.jit(summary, cache_size=1)
with xcs.execution_options(hooks=events):
    small_cache("a string")
    small_cache(b"bytes: a new signature, and the cache holds one")
print("hooks:", ", ".join(events.events))


@xcs.op
def label_of(message: str) -> str:
    return "math" if any(ch.isdigit() for ch in message) else "chat"


def route(message: str) -> str:
    label = label_of(f"Classify: {message}")
    if label == "math":  # used before the next call: nothing can overlap
        return summarise(f"solve {message}")
    return summarise(message)


router = xcs.jit(route)
for message in ["2 + 2", "hi", "3 * 3", "why?", "4 - 1", "ok", "5 / 5", "bye"]:
    assert router(message) == route(message)
explained = xcs.explain_jit_selection(router)
print(
    "router:",
    next(line.strip() for line in explained.splitlines() if "serial" in line),
)

release, arrived = threading.Event(), threading.Semaphore(0)


def slow(i: int) -> int:
    arrived.release()
    release.wait(5)
    return i


g = xcs.Graph()
for i in range(3):
    g.add_node(lambda i=i: slow(i), node_id=f"call{i}")
options = xcs.ExecutionOptions(scheduler="parallel", max_workers=2)
runner = threading.Thread(
    target=xcs.execute_graph, args=(g,), kwargs={"options": options}
)
runner.start()
arrived.acquire(timeout=5), arrived.acquire(timeout=5)
status = xcs.engine_status()
release.set()
runner.join()
print(
    f"engine while running: {status.runs} run(s), {status.running} running, "
    f"{status.queued} queued"
)

pipeline = xcs.Graph()
pipeline.add_node(lambda x: x, node_id="load")
pipeline.add_node(lambda rows: rows, node_id="clean")
pipeline.add_node(lambda rows: 1 / 0, node_id="score")
pipeline.connect("load", "clean", "score")
try:
    xcs.execute_graph(pipeline, {"x": [1, 2]})
except xcs.NodeExecutionError as error:
    print(f"failure at {error.node_id} after: {' -> '.join(error.path)}")
