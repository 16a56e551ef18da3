"""A multi-step LLM pipeline: draft, critique, revise, judge, with `jit` overlapping each step.

Purpose: three drafts of an answer, each critiqued and revised by its own chain of calls,
then a judge picks the best revision. Written as a plain function of `LLMOperator` calls;
`xcs.jit` traces it into a plan of 10 calls whose critical path is 4 (draft -> critique ->
revise -> judge), so the three chains run side by side. Prompts are built *inside*
operators (from their arguments), never with an f-string in the body, which keeps the
whole function one plan.

Features: `models.LLMOperator` with multi-placeholder templates, `models.JudgeSynthesis`,
`SimulatedModel` counters, `xcs.jit`, `xcs.get_jit_stats`, `xcs.explain_jit_selection`.

How to run:

    python examples/models/33_multistep_pipeline.py
"""

# expect: ^plan: 10 leaf calls, critical path 4$
# expect: ^model calls per question: 10, at most 3 at once$
# expect: ^same answers as plain Python: True$
# expect: ^strategy: trace$

import ember_xcs as xcs
from ember_xcs import models

model = models.SimulatedModel(latency=0.02, seed=3)
drafts = [
    models.LLMOperator(model, "Draft an answer to: {question}", sample=i)
    for i in range(3)
]
critique = models.LLMOperator(
    model, "Critique this answer to {question}: {draft}"
)
revise = models.LLMOperator(model, "Revise {draft} given {critique}")
judge = models.JudgeSynthesis(model)


def answer(question: str) -> str:
    revisions = []
    for draft in drafts:  # three independent chains
        first = draft(question)
        notes = critique(question=question, draft=first)
        revisions.append(revise(draft=first, critique=notes))
    return judge(revisions, question)


fast = xcs.jit(answer)
questions = ["What is XLA?", "Why dataflow?", "What is a mesh?"]
answers = [fast(q) for q in questions]
stats = xcs.get_jit_stats(fast)
print(
    f"plan: {stats.leaf_calls} leaf calls, critical path {stats.critical_path}"
)
print(
    f"model calls per question: {model.calls // len(questions)}, at most {model.max_in_flight} at once"
)
print(
    "same answers as plain Python:", answers == [answer(q) for q in questions]
)
print("strategy:", xcs.get_jit_strategy_used(fast))
