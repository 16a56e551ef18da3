"""A `Case` (one scenario at one latency) and the `Runner`s that contenders build for it.

A contender is a function `make(case) -> Runner`; a `Runner` maps an input to the list of
the program's outputs (one per sink, in `case.lowered.sinks` order), so every contender
is checked against the same reference: the program run directly with zero latency.
A contender that cannot run here raises `Unavailable` with the reason, which the report
prints instead of a row.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from ember_xcs.graph import Graph
from ember_xcs.operators import Operator

from ._lowering import Lowered, critical_path, lower, to_graph

__all__ = ["Case", "Runner", "Unavailable", "as_list", "build_case", "same"]


class Unavailable(Exception):
    """This contender cannot run on this machine or for this case (the message says why)."""


@dataclasses.dataclass
class Runner:
    """`call(x)` runs the program once on input `x` and returns its outputs as a list."""

    call: Callable[[Any], list[Any]]
    close: Callable[[], None] = lambda: None
    info: Callable[[], dict[str, Any]] = dict  # facts to record after the runs (jit stats)


@dataclasses.dataclass
class Case:
    """One scenario at one latency, with everything contenders need prepared once."""

    scenario: str
    latency: float
    program: Operator
    reference: Operator
    lowered: Lowered
    graph: Graph
    cp_seconds: float
    cp_calls: int
    calls: int
    width: int
    inputs: Callable[[int], Any]
    factory: Callable[[float], Operator]
    cache: dict[Any, Any] = dataclasses.field(default_factory=dict)

    @property
    def nodes(self) -> int:
        return len(self.lowered.nodes)

    def fresh_program(self) -> Operator:
        """A new instance of the program, for contenders that keep state on it (jit)."""
        return self.factory(self.latency)

    def expected(self, x: Any) -> list[Any]:
        return as_list(self.reference(x), len(self.lowered.sinks))


def build_case(
    scenario: str,
    factory: Callable[[float], Operator],
    latency: float,
    inputs: Callable[[int], Any] | None = None,
    reference: Callable[[float], Operator] | None = None,
) -> Case:
    """Build the program at `latency` (and at 0 for the reference) and analyse it.

    `reference` builds the answer-checking program when `factory`'s cannot be called
    directly (async leaves); it must give the same answers.
    """
    program = factory(latency)
    lowered = lower(program)
    graph = to_graph(lowered)
    cp_seconds, cp_calls = critical_path(graph, lowered)
    return Case(
        scenario=scenario,
        latency=latency,
        program=program,
        reference=(reference or factory)(0.0),
        lowered=lowered,
        graph=graph,
        cp_seconds=cp_seconds,
        cp_calls=cp_calls,
        calls=sum(1 for n in lowered.nodes if n.weight > 0),
        width=lowered.width(),
        inputs=inputs or (lambda k: f"question {k}: what does XLA compile?"),
        factory=factory,
    )


def as_list(output: Any, sinks: int) -> list[Any]:
    """A program's output as a list of sink outputs (single-sink programs return one)."""
    if sinks == 1:
        return [output]
    return list(output)


def same(got: Any, want: Any) -> bool:
    """Equal answers: exact for text and ints, `allclose` for arrays and floats."""
    if isinstance(want, list | tuple):
        return (
            isinstance(got, list | tuple)
            and len(got) == len(want)
            and all(same(g, w) for g, w in zip(got, want, strict=True))
        )
    if isinstance(want, str | int) and not isinstance(want, bool):
        return type(got) is type(want) and got == want
    try:
        return bool(np.allclose(np.asarray(got), np.asarray(want), rtol=1e-5, atol=1e-6))
    except (TypeError, ValueError):
        return got == want
