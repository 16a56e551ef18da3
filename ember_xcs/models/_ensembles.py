"""Ensemble building blocks: composites that `jit` flattens, and the leaves they combine.

The rule that makes nesting parallelise: **no composite looks at a sub-operator's output.**
`UniformEnsemble` and `Sequential` only call sub-operators and pass their outputs along
(inside lists), so a symbolic trace goes straight through them. Everything that needs the
actual text (counting votes, formatting candidate answers into a judge prompt, parsing a
verdict) happens inside a leaf: `MostCommon`, `JudgeSynthesis`, `Verifier`. A 10-unit
ensemble + judge nested two deep therefore traces to 111 leaf calls whose critical path is
3, and runs in about three model latencies.

`Sequential` threads the pipeline's named inputs through: every stage after the first gets
the previous stage's output as its first argument, plus any of the pipeline's inputs that
it names as parameters. That is how a judge after an ensemble still sees the question:

```python
pipeline = Sequential([UniformEnsemble(5, model), JudgeSynthesis(model)])
pipeline(question="...")   # ensemble(question=...) -> judge(answers, question=...)
```
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

from ..operators import Operator, operator_signature
from ._errors import ModelConfigError, PromptTemplateError
from ._llm_operator import LLMOperator, instance_signature
from ._protocol import Model

__all__ = [
    "JudgeSynthesis",
    "MostCommon",
    "Sequential",
    "UniformEnsemble",
    "Verdict",
    "Verifier",
    "nested_ensemble",
]


class UniformEnsemble(Operator):
    """`num_units` calls of one prompt to one model, each with its own sample index.

    A composite: it holds its units in `self.units`, so `jit` traces into it and every
    unit becomes its own graph node. Returns the units' outputs as a list, in unit order.

    **Arguments:**

    - `num_units`, `model`, `prompt_template`, `parse`, `params`: as for `LLMOperator`.
    - `first_sample`: sample index of the first unit; unit `i` uses `first_sample + i`.

    Use `UniformEnsemble.from_units(units)` to ensemble any operators, e.g. whole
    ensemble + judge pipelines (see `nested_ensemble`).
    """

    def __init__(
        self,
        num_units: int,
        model: Model,
        prompt_template: str = "{question}",
        *,
        parse: Callable[[str], Any] | None = None,
        params: Mapping[str, Any] | None = None,
        first_sample: int = 0,
    ):
        if not isinstance(num_units, int) or num_units < 1:
            raise ModelConfigError(f"num_units must be an int >= 1, got {num_units!r}")
        self.units = [
            LLMOperator(model, prompt_template, parse, sample=first_sample + i, params=params)
            for i in range(num_units)
        ]

    @classmethod
    def from_units(cls, units: Sequence[Operator]) -> UniformEnsemble:
        """An ensemble of existing operators, all called with the same arguments."""
        units = list(units)
        if not units or not all(isinstance(u, Operator) for u in units):
            raise ModelConfigError("from_units() needs a non-empty list of operators")
        ensemble = cls.__new__(cls)
        ensemble.units = units
        return ensemble

    @instance_signature
    def __signature__(self) -> inspect.Signature:
        return operator_signature(self.units[0])

    def forward(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [unit(*args, **kwargs) for unit in self.units]


class MostCommon(Operator):
    """A leaf that returns the most frequent response (ties: the first one seen).

    `normalize` (e.g. `str.strip`, `str.lower`) decides which responses count as equal;
    the response returned is the first original in the winning group.
    """

    def __init__(self, normalize: Callable[[Any], Hashable] | None = None):
        self.normalize = normalize

    def forward(self, responses: Sequence[Any]) -> Any:
        if not responses:
            raise ModelConfigError("MostCommon got no responses to vote on")
        keys = [self.normalize(r) if self.normalize else r for r in responses]
        counts = Counter(keys)
        best = max(counts.values())
        winner = next(i for i, k in enumerate(keys) if counts[k] == best)
        return responses[winner]


JUDGE_TEMPLATE = """You are given {count} candidate answers to a question.

Question: {question}

Candidate answers:
{responses}

Weigh the candidates, then give the single best answer on the last line, as
Final answer: <answer>"""


class JudgeSynthesis(LLMOperator):
    """A leaf that shows a judge model the candidate answers and returns its final answer.

    Call it as `judge(responses, question)`. The candidates are numbered into the template
    here, inside the leaf, so the ensemble feeding it never needs concrete values. The
    template may use `{question}`, `{responses}` (the numbered list) and `{count}`. The
    default `parse` takes the text after the last `Final answer:`, else the whole reply.
    """

    def __init__(
        self,
        model: Model,
        prompt_template: str = JUDGE_TEMPLATE,
        parse: Callable[[str], Any] | None = None,
        *,
        sample: int = 0,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
    ):
        super().__init__(
            model, prompt_template, parse or final_answer, sample=sample, params=params, name=name
        )
        _check_placeholders(
            self, required={"responses"}, allowed={"question", "responses", "count"}
        )

    @instance_signature
    def __signature__(self) -> inspect.Signature:
        return _signature("responses", "question")

    def prompt(self, responses: Sequence[Any], question: str = "") -> str:
        if isinstance(responses, str | bytes) or not isinstance(responses, Sequence):
            raise PromptTemplateError(
                f"{self.name} needs a list of candidate answers as `responses`, "
                f"got {type(responses).__name__}"
            )
        values = {"question": question, "responses": _numbered(responses), "count": len(responses)}
        return self.render(values)


VERIFIER_TEMPLATE = """Check this answer to the question.

Question: {question}
Answer: {answer}

Reply with a line "Verdict: PASS" or "Verdict: FAIL", a line "Explanation: ...", and,
if the answer is wrong, a line "Revised answer: ..."."""


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A verifier's decision. `answer` is the revised answer when one was given."""

    passed: bool
    answer: str
    explanation: str = ""


class Verifier(LLMOperator):
    """A leaf that asks a model to check `answer` to `question`; returns a `Verdict`.

    Call it as `verifier(answer, question)`. A reply without a recognisable verdict line
    counts as a failure, with the reply kept as the explanation.
    """

    def __init__(
        self,
        model: Model,
        prompt_template: str = VERIFIER_TEMPLATE,
        *,
        sample: int = 0,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
    ):
        super().__init__(model, prompt_template, None, sample=sample, params=params, name=name)
        _check_placeholders(self, required={"answer"}, allowed={"question", "answer"})

    @instance_signature
    def __signature__(self) -> inspect.Signature:
        return _signature("answer", "question")

    def prompt(self, answer: Any, question: str = "") -> str:
        return self.render({"question": question, "answer": str(answer)})

    def finish(self, text: str, answer: Any, question: str = "") -> Verdict:
        return parse_verdict(text, str(answer))


class Sequential(Operator):
    """Run operators one after another; a composite, so `jit` traces through it.

    The first stage gets the call's arguments; each later stage gets the previous output
    as its first argument, plus, by keyword, any of the call's named inputs (bound to the
    first stage's parameters) that it declares as parameters.
    """

    def __init__(self, operators: Sequence[Operator]):
        operators = list(operators)
        if not operators or not all(isinstance(o, Operator) for o in operators):
            raise ModelConfigError("Sequential needs a non-empty list of operators")
        self.operators = operators

    @instance_signature
    def __signature__(self) -> inspect.Signature:
        return operator_signature(self.operators[0])

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        first, *rest = self.operators
        named = _named_inputs(first, args, kwargs)
        out = first(*args, **kwargs)
        for stage in rest:
            out = stage(out, **_inputs_for(stage, named))
        return out


def nested_ensemble(
    model: Model,
    *,
    width: int = 10,
    depth: int = 2,
    judge_model: Model | None = None,
    prompt_template: str = "{question}",
) -> Sequential:
    """An ensemble + judge pipeline whose units are themselves such pipelines, `depth` deep.

    Depth 1 is `width` units and a judge; depth `d` ensembles `width` pipelines of depth
    `d - 1` and judges them. Every unit gets a distinct sample index, so no two leaves
    ask the same thing. Leaf calls: `width * calls(d - 1) + 1` (111 for width 10, depth
    2); critical path: `depth + 1` calls.
    """
    if not isinstance(depth, int) or depth < 1:
        raise ModelConfigError(f"depth must be an int >= 1, got {depth!r}")
    judge = judge_model if judge_model is not None else model
    counter = iter(range(1 << 62))

    def build(level: int) -> Sequential:
        if level == 1:
            ensemble = UniformEnsemble(width, model, prompt_template, first_sample=next(counter))
            for _ in range(width - 1):
                next(counter)
        else:
            ensemble = UniformEnsemble.from_units([build(level - 1) for _ in range(width)])
        return Sequential([ensemble, JudgeSynthesis(judge)])

    return build(depth)


# --- parsing -------------------------------------------------------------------------

_FINAL = re.compile(r"final answer\s*:\s*(.+)", re.IGNORECASE)
_VERDICT = re.compile(r"verdict\s*:\s*\**\s*(pass|fail)", re.IGNORECASE)
_EXPLANATION = re.compile(r"explanation\s*:\s*(.+)", re.IGNORECASE)
_REVISED = re.compile(r"revised answer\s*:\s*(.+)", re.IGNORECASE)


def final_answer(text: str) -> str:
    """The text after the last `Final answer:`, else the whole reply, stripped."""
    matches = _FINAL.findall(text)
    return matches[-1].strip() if matches else text.strip()


def parse_verdict(text: str, answer: str) -> Verdict:
    """A `Verdict` from a verifier reply; no verdict line means not passed."""
    verdict = _VERDICT.search(text)
    explanation = _EXPLANATION.search(text)
    revised = _REVISED.search(text)
    return Verdict(
        passed=bool(verdict) and verdict.group(1).lower() == "pass",
        answer=revised.group(1).strip() if revised else answer,
        explanation=explanation.group(1).strip() if explanation else text.strip(),
    )


# --- helpers -------------------------------------------------------------------------


def _numbered(responses: Sequence[Any]) -> str:
    return "\n".join(f"{i}. {response}" for i, response in enumerate(responses, 1))


def _signature(*names: str) -> inspect.Signature:
    first = inspect.Parameter(names[0], inspect.Parameter.POSITIONAL_OR_KEYWORD)
    rest = [
        inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default="") for n in names[1:]
    ]
    return inspect.Signature([first, *rest])


def _check_placeholders(operator: LLMOperator, *, required: set[str], allowed: set[str]) -> None:
    used = set(operator._placeholders)
    if not required <= used or not used <= allowed:
        raise ModelConfigError(
            f"{type(operator).__name__} template must use {{{'}, {'.join(sorted(required))}}} "
            f"and may use {{{'}, {'.join(sorted(allowed))}}}; it uses "
            f"{', '.join(sorted(used)) or 'none'}"
        )


def _named_inputs(first: Operator, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """The call's arguments by parameter name of the first stage (best effort)."""
    try:
        bound = operator_signature(first).bind_partial(*args, **kwargs)
    except (TypeError, ValueError):
        return dict(kwargs)
    named: dict[str, Any] = {}
    for name, value in bound.arguments.items():
        kind = bound.signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_KEYWORD:
            named.update(value)
        elif kind is not inspect.Parameter.VAR_POSITIONAL:
            named[name] = value
    return named


def _inputs_for(stage: Operator, named: dict[str, Any]) -> dict[str, Any]:
    """The named inputs `stage` declares, except its first parameter (the previous output)."""
    try:
        parameters = list(operator_signature(stage).parameters.values())
    except (TypeError, ValueError):
        return {}
    keywords = {
        p.name for p in parameters[1:] if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    return {k: v for k, v in named.items() if k in keywords}
