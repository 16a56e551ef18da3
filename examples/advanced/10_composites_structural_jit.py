"""Tutorial 5, composite operators: `structural_jit` traces through them, `autograph` records them.

Purpose: build a program from operators that hold other operators. `Ensemble` holds
units and a judge; `Reviewed` holds an ensemble and a reviewer. Because their fields hold
operators they are *composites*: `jit` traces into their `forward`, so the nested
structure flattens into one graph of leaf calls with their true dependencies.
`structural_jit` does that and never falls back to dynamic dispatch; `autograph` records
the same calls into an explicit `Graph` you can inspect, draw and run later.

Features: `xcs.Operator` composites, `sub_operators()`, `xcs.structural_jit`,
`xcs.get_jit_stats`, `xcs.explain_jit_selection`, `xcs.autograph`, `Graph.to_mermaid`.

How to run (page: docs/tutorials/05-composites.md):

    python examples/advanced/10_composites_structural_jit.py
"""

# expect: ^sub-operators: \['ensemble', 'reviewer'\]$
# expect: ^plain and structural_jit agree: True$
# expect: ^leaf calls: 6, critical path: 3, in flight: 4$
# expect: ^strategy: structural$
# expect: ^recorded: 7 nodes, waves \[4, 1, 1, 1\]$
# expect: ^graph run: reviewed: u\d: what is a plan\?$
# expect: ^graph TD$

# --8<-- [start:leaves]
import time

import ember_xcs as xcs


class Unit(xcs.Operator):
    """A leaf: no field holds an operator, so jit never traces into it."""

    def __init__(self, seed: int):
        self.seed = seed

    def forward(self, question: str) -> str:
        time.sleep(0.03)  # an LLM call
        return f"u{self.seed}: {question}"


@xcs.op
def judge(answers: list[str]) -> str:
    return max(answers)


@xcs.op
def review(answer: str) -> str:
    return f"reviewed: {answer}"


# --8<-- [end:leaves]


# --8<-- [start:composites]
class Ensemble(xcs.Operator):
    def __init__(self, units, judge):
        self.units = units  # a list of operators: this operator is a composite
        self.judge = judge

    def forward(self, question: str) -> str:
        answers = [unit(question) for unit in self.units]
        return self.judge(answers)


class Reviewed(xcs.Operator):
    def __init__(self, ensemble, reviewer):
        self.ensemble = ensemble
        self.reviewer = reviewer

    def forward(self, question: str) -> str:
        return self.reviewer(self.ensemble(question))


program = Reviewed(Ensemble([Unit(i) for i in range(4)], judge), review)
print("sub-operators:", [path for path, _ in program.sub_operators()])
# --8<-- [end:composites]

# --8<-- [start:structural]
fast = xcs.structural_jit(program)
print(
    "plain and structural_jit agree:",
    fast("what is XLA?") == program("what is XLA?"),
)
stats = xcs.get_jit_stats(fast)
print(
    f"leaf calls: {stats.leaf_calls}, critical path: {stats.critical_path},"
    f" in flight: {stats.max_in_flight}"
)
print("strategy:", xcs.get_jit_strategy_used(fast))
# --8<-- [end:structural]

# --8<-- [start:autograph]
recording = xcs.autograph()
with recording as graph:
    program("what is XLA?")  # nothing runs: the calls are recorded
print(
    f"recorded: {len(graph.nodes)} nodes, waves {[len(w) for w in graph.waves()]}"
)

result = xcs.execute_graph(graph, {"question": "what is a plan?"})
print("graph run:", *result.values())
print(graph.to_mermaid().splitlines()[0])
# --8<-- [end:autograph]
