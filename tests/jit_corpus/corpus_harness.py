"""The shared harness of the jit corpus: day-one programs, run plainly and under `xcs.jit`.

Each family module (`test_corpus_*.py`) writes its programs the way a LangChain, DSPy or
JAX user would after reading the README, with leaves made here so their calls can be
counted: `@leaf` functions (an `@xcs.op` that sleeps `LATENCY` and records its call) and
`model(...)` (a `SimulatedModel` that records its calls the same way). A `Program` names
the function, its inputs and its *natural width*: the most leaf calls a perfect scheduler
would have in flight at once.

`check(program, mode)` runs every input plainly, then under `xcs.jit(fn, mode=mode)`, and
asserts, per input: the plain result; the same leaf calls (operator and arguments, as a
multiset); no exception the plain function would not raise (a leaf's error escapes jit
as a node-naming `NodeExecutionError` that is also of the leaf's exception type, so the
jitted exception must be an instance of the plain one's type). Where the plain function
raised, calls that were already in flight when the failing call failed still ran (plain
Python never made them): the jitted calls must include the plain ones, and may add
those. Over the run, the in-flight
peak must reach the declared width where the mode can overlap calls (every mode for a
program that traces fully; `auto`, `trace` and `dynamic` for the rest: `structural` runs
an untraceable function as written, by design). No wall-clock assertions.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs.models import SimulatedModel

LATENCY = 0.005  # seconds per leaf call
PATIENCE = 0.1  # seconds a call waits for the peers it could overlap with (see Recorder)
MODES = ("auto", "trace", "structural", "dynamic")


class Recorder:
    """Every leaf call of one run (name and arguments) and the most calls in flight.

    `target`: while fewer calls than this have been in flight together, a starting call
    waits up to `PATIENCE` for peers before it sleeps its latency, so calls that *can*
    overlap do, however slowly a loaded machine starts them (a serialised run still
    shows a peak of 1: each call waits alone). 0 (plain runs) never waits.
    """

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.target = 0
        self.reset()

    latency = LATENCY  # seconds each leaf sleeps (the benchmark sets 0.05)

    def reset(self) -> None:
        with self.lock:
            self.calls: collections.Counter[tuple[str, str]] = collections.Counter()
            self.active = 0
            self.peak = 0

    def enter(self, name: str, args: Any) -> None:
        with self.lock:
            self.calls[(name, repr(args))] += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.lock.notify_all()
            deadline = time.monotonic() + PATIENCE
            while self.peak < self.target and (left := deadline - time.monotonic()) > 0:
                self.lock.wait(left)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1


RECORDER = Recorder()


def leaf(fn: Callable[..., Any] | None = None) -> Any:
    """`@xcs.op`, recording each call into `RECORDER` and sleeping `RECORDER.latency`."""

    def wrap(function: Callable[..., Any]) -> xcs.Operator:
        name = function.__name__

        def body(*args: Any, **kwargs: Any) -> Any:
            RECORDER.enter(name, (args, sorted(kwargs.items())))
            try:
                time.sleep(RECORDER.latency)
                return function(*args, **kwargs)
            finally:
                RECORDER.leave()

        body.__name__ = body.__qualname__ = name
        return xcs.op(body, name=name)

    return wrap if fn is None else wrap(fn)


class RecordingModel(SimulatedModel):
    """A `SimulatedModel` whose calls land in `RECORDER` (a user's own model class)."""

    def complete(self, prompt: str, *, sample: int = 0, **params: Any) -> Any:
        RECORDER.enter(f"{self.name}.complete", (prompt, sample))
        try:
            return super().complete(prompt, sample=sample, **params)
        finally:
            RECORDER.leave()


def model(name: str = "llm", **kwargs: Any) -> RecordingModel:
    kwargs.setdefault("latency", lambda rng: RECORDER.latency)
    return RecordingModel(name, **kwargs)


@dataclasses.dataclass(repr=False)
class Program:
    """One corpus program: `fn(*args)` for each `args` in `inputs`.

    `width`: the natural independent width (most leaf calls that can run at once).
    `depth`: leaf calls on the longest dependency chain (the benchmark's critical path is
    `depth * latency`): a number, or a function of the plain run's call multiset.
    `traces`: the function traces fully into a plan (so `structural` overlaps too).
    `modes`: the jit modes that apply.
    `threads`: call the jitted function from this many threads at once.
    """

    name: str
    fn: Callable[..., Any]
    inputs: Sequence[tuple[Any, ...]]
    width: int
    depth: int | Callable[[collections.Counter], int] = 1
    traces: bool = False
    modes: Sequence[str] = MODES
    threads: int = 1
    jit: Callable[..., Any] = dataclasses.field(default=lambda fn, mode: xcs.jit(fn, mode=mode))

    def __repr__(self) -> str:
        return self.name


def serial(calls: collections.Counter) -> int:
    """`depth` of a program whose calls all depend on the one before (retries, agents)."""
    return sum(calls.values())


def made(calls: collections.Counter, marker: str) -> int:
    """How many of `calls` have `marker` in their name or arguments: for a `depth` that
    counts a chain of like calls (each made only once the one before has answered)."""
    return sum(n for (name, args), n in calls.items() if marker in name + args)


def _outcome(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
    try:
        return "ok", fn(*args)
    except Exception as exc:  # noqa: BLE001 - the plain outcome is part of the contract
        return "raised", type(exc)


def _run(fn: Callable[..., Any], args: tuple[Any, ...], threads: int) -> list[tuple[str, Any]]:
    if threads == 1:
        return [_outcome(fn, args)]
    out: list[Any] = [None] * threads
    barrier = threading.Barrier(threads)

    def worker(i: int) -> None:
        barrier.wait()
        out[i] = _outcome(fn, args)

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return out


def check(program: Program, mode: str) -> None:
    """Run `program` plainly and under `jit(mode=mode)`; assert the corpus contract."""
    jitted = program.jit(program.fn, mode)
    overlaps = mode in ("auto", "trace", "dynamic") or program.traces
    peak = 0
    for args in program.inputs:
        RECORDER.reset()
        expected = _run(program.fn, args, program.threads)
        plain_calls = RECORDER.calls
        RECORDER.reset()
        RECORDER.target = program.width if overlaps else 0
        try:
            got = _run(jitted, args, program.threads)
        finally:
            RECORDER.target = 0
        assert len(got) == len(expected) and all(map(_matches, got, expected)), (
            f"{program} under jit(mode={mode!r}) on {args!r}: got {_short(got)}, "
            f"plainly {_short(expected)}"
        )
        raised = any(outcome[0] == "raised" for outcome in expected)
        calls_match = not plain_calls - RECORDER.calls if raised else RECORDER.calls == plain_calls
        assert calls_match, f"{program}: leaf calls differ on {args!r}"
        peak = max(peak, RECORDER.peak)
    if overlaps:
        assert peak >= program.width, (
            f"{program} under jit(mode={mode!r}): at most {peak} leaf calls in flight, "
            f"natural width {program.width}"
        )


def _matches(got: tuple[str, Any], expected: tuple[str, Any]) -> bool:
    """The same value, or an exception of the plain exception's type (or a subclass)."""
    if expected[0] == "raised":
        return got[0] == "raised" and issubclass(got[1], expected[1])
    return got == expected


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 300 else text[:297] + "..."


def cases(
    programs: Sequence[Program], known: Mapping[tuple[str, str], str] | None = None
) -> list[Any]:
    """`pytest.param`s of every (program, mode) that applies, for `parametrize`; those in
    `known` ((name, mode): why it falls short) are strict expected failures."""
    out = []
    for p in programs:
        for m in p.modes:
            why = (known or {}).get((p.name, m))
            marks = [pytest.mark.xfail(strict=True, reason=why)] if why else []
            out.append(pytest.param(p, m, id=f"{p.name}-{m}", marks=marks))
    return out
