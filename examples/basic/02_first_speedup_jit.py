"""Tutorial 2, first speedup with `jit`: the same program as a plain Python function.

Purpose: write the pipeline of tutorial 1 as ordinary Python and let `xcs.jit` find the
graph. The first call traces the function into a plan (no operator runs while tracing),
then runs it; every later call with a new question replays the plan, with the five
independent drafts in flight at once.

Features: `xcs.jit`, `xcs.get_jit_stats`, `xcs.explain_jit_selection`,
`xcs.get_jit_strategy_used`.

How to run (page: docs/tutorials/02-first-speedup.md):

    python examples/basic/02_first_speedup_jit.py
"""

# expect: ^plain: 'e: why\?' in \d+ ms$
# expect: ^jit: 'e: why\?' in \d+ ms$
# expect: ^same answers: True$
# expect: ^traces: 1, cache hits: 3, leaf calls: 6, critical path: 2, in flight: 5$
# expect: ^strategy: trace$

# --8<-- [start:program]
import time

import ember_xcs as xcs

LATENCY = 0.04


@xcs.op
def draft(question: str, style: str) -> str:
    time.sleep(LATENCY)  # stands in for one LLM call
    return f"{style}: {question}"


@xcs.op
def pick(*drafts: str) -> str:
    return max(drafts)


def answer(question: str) -> str:
    drafts = [draft(question, style) for style in "abcde"]
    return pick(*drafts)


# --8<-- [end:program]


# --8<-- [start:jit]
fast_answer = xcs.jit(answer)  # or write @xcs.jit above `def answer`


def timed(fn, question):
    start = time.perf_counter()
    value = fn(question)
    return value, (time.perf_counter() - start) * 1000


for name, fn in (("plain", answer), ("jit", fast_answer)):
    value, ms = timed(fn, "why?")
    print(f"{name}: {value!r} in {ms:.0f} ms")
# --8<-- [end:jit]

# --8<-- [start:replay]
questions = ["what is XLA?", "what is a plan?", "why dataflow?"]
print(
    "same answers:",
    [fast_answer(q) for q in questions] == [answer(q) for q in questions],
)

stats = xcs.get_jit_stats(fast_answer)
print(
    f"traces: {stats.traces}, cache hits: {stats.cache_hits}, leaf calls: {stats.leaf_calls},"
    f" critical path: {stats.critical_path}, in flight: {stats.max_in_flight}"
)
print("strategy:", xcs.get_jit_strategy_used(fast_answer))
# --8<-- [end:replay]
