"""The standard scenarios, each a function of the simulated latency `L`.

| scenario | structure | LLM calls | critical path (calls) |
|---|---|---|---|
| `single` | one call | 1 | 1 |
| `chain-5/10/20` | calls in sequence | 5 / 10 / 20 | 5 / 10 / 20 |
| `diamond` | a -> (b, c) -> d | 4 | 3 |
| `ensemble-5/10/20` | n units + judge | n + 1 | 2 |
| `ensemble-depth2` | 10 x (10 units + judge) + judge | 111 | 3 |
| `deep-mixed` | chain of calls and ensembles of chains | 23 | 10 |
| `mixed-numeric` | embed -> score (JAX) -> 8 readers + judge -> embed -> head (JAX) | 9 | 2 |

`ensemble-depth2-async` is the same 111 calls with `async def` leaves; it runs beside the
standard scenarios against the asyncio baseline only (plain Python cannot call it).

`noop-grid` (40 layers x 50 no-op leaves) measures per-node overhead; `Layered` grids of
100 / 1,000 / 10,000 leaves measure jit trace and replay cost (`_overhead`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ember_xcs.operators import Operator

from ._programs import (
    AsyncSimulatedCall,
    Chain,
    Embed,
    Ensemble,
    Head,
    Reader,
    Score,
    SimulatedCall,
)

__all__ = ["SCENARIOS", "Scenario", "ensemble_depth2", "ensemble_depth2_async"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named program factory; `fan_out` scenarios go on the speedup-vs-width plot."""

    name: str
    build: Callable[[float], Operator]
    fan_out: bool = False


def _calls(prefix: str, n: int, latency: float) -> list[Operator]:
    return [SimulatedCall(f"{prefix}{i}", latency) for i in range(n)]


def single(latency: float) -> Operator:
    return SimulatedCall("only", latency)


def chain(n: int) -> Callable[[float], Operator]:
    return lambda latency: Chain(_calls("step", n, latency))


def diamond(latency: float) -> Operator:
    fan = Ensemble(_calls("side", 2, latency), SimulatedCall("join", latency))
    return Chain([SimulatedCall("top", latency), fan])


def ensemble(n: int) -> Callable[[float], Operator]:
    return lambda latency: Ensemble(_calls("unit", n, latency), SimulatedCall("judge", latency))


def ensemble_depth2(
    latency: float, width: int = 10, leaf: Callable[[str, float], Operator] = SimulatedCall
) -> Operator:
    """`width` inner ensembles of `width` units + judge, under one outer judge.

    `leaf(label, latency)` makes each call (the HTTP section passes a model-backed one).
    """
    inner = [
        Ensemble([leaf(f"u{i}_{j}", latency) for j in range(width)], leaf(f"judge{i}", latency))
        for i in range(width)
    ]
    return Ensemble(inner, leaf("final", latency))


def ensemble_depth2_async(latency: float) -> Operator:
    """The depth-2 ensemble with `async def` leaves (no thread held while a call waits)."""
    return ensemble_depth2(latency, leaf=AsyncSimulatedCall)


def deep_mixed(latency: float) -> Operator:
    """Chains inside ensembles inside a chain: 23 calls, critical path 10."""
    first = Ensemble(
        [Chain(_calls(f"a{i}_", 3, latency)) for i in range(4)], SimulatedCall("judge_a", latency)
    )
    second = Ensemble(
        [Chain(_calls(f"b{i}_", 2, latency)) for i in range(3)], SimulatedCall("judge_b", latency)
    )
    return Chain(
        [
            SimulatedCall("plan", latency),
            first,
            SimulatedCall("refine", latency),
            second,
            SimulatedCall("answer", latency),
        ]
    )


def mixed_numeric(latency: float, readers: int = 8) -> Operator:
    """Embed -> score (JAX) -> readers of the top documents + judge -> embed -> head (JAX)."""
    panel = Ensemble(
        [Reader(f"reader{i}", i, latency) for i in range(readers)],
        SimulatedCall("synthesis", latency),
    )
    return Chain([Embed("embed_query"), Score(), panel, Embed("embed_answer"), Head()])


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("single", single),
    Scenario("chain-5", chain(5)),
    Scenario("chain-10", chain(10)),
    Scenario("chain-20", chain(20)),
    Scenario("diamond", diamond),
    Scenario("ensemble-5", ensemble(5), fan_out=True),
    Scenario("ensemble-10", ensemble(10), fan_out=True),
    Scenario("ensemble-20", ensemble(20), fan_out=True),
    Scenario("ensemble-depth2", ensemble_depth2, fan_out=True),
    Scenario("deep-mixed", deep_mixed),
    Scenario("mixed-numeric", mixed_numeric),
)
