"""The benchmark programs: composite operators built from a few simulated leaves.

Every scenario is written once, as an ordinary `Operator` tree:

- `SimulatedCall` is a leaf "LLM call": it sleeps `latency` seconds (the time a remote
  model would keep the thread waiting) and returns a short deterministic tag of its name
  and inputs, so every scheduler and baseline can be checked for the same answer;
- `Chain` feeds each step's output to the next;
- `Ensemble` runs every unit on the same input, then hands all answers to a judge;
- `Layered` is a grid of cheap `Noop` leaves (each reads two nodes of the layer before),
  used to measure per-node overhead and jit trace/replay cost;
- `Embed`, `Score`, `Reader` and `Head` make the mixed LLM + numeric pipeline.

Calling a program directly is the "plain Python" variant. `_lowering` turns the same tree
into an explicit `Graph` and into the neutral node list that the baselines run, so the
structure (and so the critical path) is identical everywhere.
"""

from __future__ import annotations

import asyncio
import time
import zlib
from typing import Any

import numpy as np

from ember_xcs.operators import Operator

__all__ = [
    "AsyncSimulatedCall",
    "Chain",
    "Embed",
    "Ensemble",
    "Head",
    "Layered",
    "Noop",
    "Reader",
    "Score",
    "SimulatedCall",
    "tag",
]

_MODULUS = 1_000_003


def tag(name: str, inputs: tuple[Any, ...]) -> str:
    """A short deterministic answer that depends on the caller and every input."""
    digest = zlib.crc32("\x1f".join(map(str, inputs)).encode())
    return f"{name}:{digest:08x}"


class SimulatedCall(Operator):
    """A leaf LLM call: waits `latency` seconds, then answers deterministically."""

    def __init__(self, label: str, latency: float):
        self.label = label
        self.latency = latency

    @property
    def name(self) -> str:
        return self.label

    def forward(self, prompt: Any, *context: Any) -> str:
        if self.latency:
            time.sleep(self.latency)
        return tag(self.label, (prompt, *context))

    async def aforward(self, prompt: Any, *context: Any) -> str:
        """The same call for asyncio code: the wait does not hold a thread."""
        if self.latency:
            await asyncio.sleep(self.latency)
        return tag(self.label, (prompt, *context))


class AsyncSimulatedCall(SimulatedCall):
    """The same call written `async def`: the engine awaits it on its event loop."""

    async def forward(self, prompt: Any, *context: Any) -> str:  # type: ignore[override]
        if self.latency:
            await asyncio.sleep(self.latency)
        return tag(self.label, (prompt, *context))

    aforward = forward


class Noop(Operator):
    """A leaf that does (almost) nothing: integer arithmetic on its inputs."""

    def __init__(self, label: str, salt: int):
        self.label = label
        self.salt = salt

    @property
    def name(self) -> str:
        return self.label

    def forward(self, prompt: Any, *context: Any) -> int:
        return (prompt + sum(context) + self.salt) % _MODULUS


class Chain(Operator):
    """Steps in sequence: each step's output is the next step's input."""

    def __init__(self, steps: list[Operator]):
        self.steps = list(steps)

    def forward(self, x: Any) -> Any:
        for step in self.steps:
            x = step(x)
        return x


class Ensemble(Operator):
    """Every unit answers the same input; the judge sees all the answers."""

    def __init__(self, units: list[Operator], judge: Operator):
        self.units = list(units)
        self.judge = judge

    def forward(self, x: Any) -> Any:
        answers = [unit(x) for unit in self.units]
        return self.judge(*answers)


class Layered(Operator):
    """`layers` x `width` no-op leaves; node (l, i) reads (l-1, i) and (l-1, i+1 mod width).

    The leaves are one flat list (row-major), so the operator is composite: `jit` traces
    into it and every leaf becomes a node (a list of lists would hide them).
    """

    def __init__(self, layers: int, width: int):
        self.width = width
        self.leaves = [Noop(f"n{k // width}_{k % width}", k) for k in range(layers * width)]

    def rows(self) -> list[list[Operator]]:
        w = self.width
        return [self.leaves[i : i + w] for i in range(0, len(self.leaves), w)]

    def forward(self, x: Any) -> list[Any]:
        grid = self.rows()
        row = [leaf(x) for leaf in grid[0]]
        width = len(row)
        for leaves in grid[1:]:
            row = [leaf(row[i], row[(i + 1) % width]) for i, leaf in enumerate(leaves)]
        return row


# --- the mixed LLM + numeric pipeline -------------------------------------------------------

_DIM, _DOCS = 64, 256


class Embed(Operator):
    """Python leaf: text -> a deterministic unit vector (a stand-in for an embedding call)."""

    def __init__(self, label: str):
        self.label = label

    @property
    def name(self) -> str:
        return self.label

    def forward(self, text: Any) -> np.ndarray:
        rng = np.random.default_rng(zlib.crc32(str(text).encode()))
        vector = rng.standard_normal(_DIM).astype(np.float32)
        return vector / np.linalg.norm(vector)


class Score(Operator):
    """Numeric leaf: similarity of the query vector to a fixed document matrix."""

    numeric = True

    def __init__(self, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.docs = rng.standard_normal((_DOCS, _DIM)).astype(np.float32)

    def forward(self, query: Any) -> Any:
        import jax.numpy as jnp

        return jnp.tanh(jnp.asarray(self.docs) @ query)


class Reader(Operator):
    """LLM leaf that reads the `rank`-th best document of a score vector."""

    def __init__(self, label: str, rank: int, latency: float):
        self.label = label
        self.rank = rank
        self.latency = latency

    @property
    def name(self) -> str:
        return self.label

    def forward(self, scores: Any) -> str:
        if self.latency:
            time.sleep(self.latency)
        return self._answer(scores)

    async def aforward(self, scores: Any) -> str:
        if self.latency:
            await asyncio.sleep(self.latency)
        return self._answer(scores)

    def _answer(self, scores: Any) -> str:
        order = np.argsort(-np.asarray(scores), kind="stable")
        return tag(self.label, (int(order[self.rank]),))


class Head(Operator):
    """Numeric leaf: a linear read-out of an embedding, the pipeline's final number."""

    numeric = True

    def __init__(self, seed: int = 1):
        self.weights = np.random.default_rng(seed).standard_normal(_DIM).astype(np.float32)

    def forward(self, vector: Any) -> Any:
        import jax.numpy as jnp

        return jnp.dot(jnp.asarray(self.weights), vector)
