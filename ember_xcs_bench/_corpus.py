"""The jit corpus as a benchmark family: day-one programs, plain vs `xcs.jit`.

The programs live with their tests in `tests/jit_corpus/` (one module per family), so this
section runs from a source checkout only; elsewhere it says so and measures nothing.
Every leaf sleeps the section's latency (50 ms in a full run). Per program:

- `plain`: the plain function, median over its inputs, each run 3 times (once in a
  quick run);
- `jit: auto`: the jitted function in its default mode, the same runs, each paired with
  a plain one (which of the two goes first alternates between rounds); both run every
  input once first (tracing, XLA compiles: a numeric operator compiles once per
  Python-int value, and JAX's eager ops compile on first use), so the figures are the
  steady state;
- `seam`: the plain function with a call handler installed that only runs each operator
  call (`Operator.__call__` hands it to the handler, which calls `forward`), in the same
  rotation: what any jit that sees the calls pays at least, and the reference for "slower
  than plain" (a jit cannot be faster than this on a program where nothing overlaps). A
  jitted function the program calls runs inline under any handler, so a program that
  overlaps calls only inside one (`jit_calls_jit`) loses that overlap here;
- critical path: the program's declared `depth` (leaf calls on its longest dependency
  chain) × latency.

The summary note gives the median wall / critical path over the programs that make
Python leaf calls (goal ≤ 1.15 at 50 ms), the programs slower under jit than plain (goal
0: median jit above median plain), each with the median of its paired differences, and
how many of them a sign test over the pairs finds slower more often than not (p < 0.05:
the difference is more than this machine's noise), the same two counts for the seam, the cost per leaf call of a dynamic run beside a cached plan's replay (no-op
leaves, 200 independent calls per jitted call), and what a width-1 chain (each call
needs the previous call's value, so nothing can overlap) pays per call under jit over
plain Python, with no-op and 1 ms leaves.
"""

from __future__ import annotations

import importlib
import math
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ember_xcs as xcs
from ember_xcs.operators import intercept_calls

from ._rows import Row

__all__ = ["NOTES", "corpus_goals", "corpus_section", "through_seam"]

NOTES: list[str] = []
CORPUS = Path(__file__).resolve().parents[1] / "tests" / "jit_corpus"


def corpus_section(settings: Any, log: Callable[[str], None]) -> list[Row]:
    NOTES.clear()
    if not CORPUS.is_dir():
        NOTES.append(f"corpus: {CORPUS} not found (the corpus runs from a source checkout)")
        return []
    # the families import their harness, and the suite's shared helpers (`tests.in_flight`)
    # from the checkout's root, as pytest lets them
    sys.path[:0] = [str(CORPUS), str(CORPUS.parents[1])]
    harness = importlib.import_module("corpus_harness")
    latency = 0.002 if settings.quick else 0.05
    rounds = 1 if settings.quick else 3  # each input this many times, plain and jit in turn
    rows: list[Row] = []
    before, harness.RECORDER.latency = harness.RECORDER.latency, latency
    try:
        for family in sorted(path.stem for path in CORPUS.glob("test_corpus_*.py")):
            for program in importlib.import_module(family).PROGRAMS:
                rows += _measure(program, harness, latency, rounds, log)
    finally:  # the corpus tests may run next in this process, at their own latency
        harness.RECORDER.latency = before
    _summarise(rows, latency, log)
    NOTES.append(_dynamic_cost(log))
    NOTES.append(_serial_cost(log))
    return rows


def _measure(
    program: Any, harness: Any, latency: float, rounds: int, log: Callable[[str], None]
) -> list[Row]:
    ways = {
        "plain": program.fn,
        "jit": program.jit(program.fn, "auto"),
        "seam": through_seam(program.fn),
    }
    times: dict[str, list[float]] = {name: [] for name in ways}
    depths = []
    for args in program.inputs:  # warm-up: traces and compiles, plain and jitted
        for fn in ways.values():
            harness._run(fn, args, program.threads)
    order = list(ways)
    for turn in range(rounds):
        for args in program.inputs:
            for name in (
                order[turn % len(order) :] + order[: turn % len(order)]
            ):  # each goes first in turn
                harness.RECORDER.reset()  # the plain run's calls alone give the depth
                fn = ways[name]
                times[name].append(_time(lambda f=fn, a=args: harness._run(f, a, program.threads)))
                if name == "plain":
                    depth = program.depth
                    depths.append(depth(harness.RECORDER.calls) if callable(depth) else depth)
    cp = statistics.median(depths) * latency or None
    base = dict(section="corpus", scenario=program.name, latency_ms=latency * 1e3, cp_s=cp)
    plain_row = Row(variant="plain python", kind="plain", **base, **_stats(times["plain"]))
    jit_row = Row(variant="jit: auto", kind="ember", **base, **_stats(times["jit"]))
    jit_row.extra["strategy"] = str(xcs.get_jit_strategy_used(ways["jit"]))
    seam_row = Row(variant="seam", kind="seam", **base, **_stats(times["seam"]))
    for row, name in ((jit_row, "jit"), (seam_row, "seam")):
        row.extra["paired_ms"] = [
            (t - p) * 1e3 for t, p in zip(times[name], times["plain"], strict=True)
        ]
    if cp:
        jit_row.ratio, jit_row.ratio_name = jit_row.median_s / cp, "wall/cp"
    log(
        f"[corpus] {program.name}: plain {plain_row.median_s * 1e3:.1f} ms, jit "
        f"{jit_row.median_s * 1e3:.1f} ms, seam {seam_row.median_s * 1e3:.1f} ms, cp "
        f"{(cp or 0) * 1e3:.0f} ms ({jit_row.extra['strategy']})"
    )
    return [plain_row, jit_row, seam_row]


def through_seam(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` with a call handler that only runs each operator call: see the module docstring."""

    def run(*args: Any, **kwargs: Any) -> Any:
        with intercept_calls(_forward):
            return fn(*args, **kwargs)

    return run


def _forward(
    operator: Any, args: tuple[Any, ...], kwargs: dict[str, Any], node_id: Any = None
) -> Any:
    return operator.forward(*args, **kwargs)


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _cpu(fn: Callable[[], Any]) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def _stats(times: list[float]) -> dict[str, Any]:
    return dict(
        median_s=statistics.median(times), min_s=min(times), max_s=max(times), runs=len(times)
    )


def corpus_goals(rows: list[Row]) -> list[tuple[str, str, str, bool]]:
    """The issue's two goals for the corpus rows among `rows`: (name, target, measured,
    met); none when the section did not run."""
    corpus = [r for r in rows if r.section == "corpus"]
    jit, ratios, slower, clearly = _tally(corpus)
    if not jit:
        return []
    latency = f"L = {jit[0].latency_ms:g} ms"
    median = statistics.median(ratios) if ratios else math.nan
    seam, _, seam_slower, seam_clearly = _tally(corpus, "seam")
    floor = (
        f"; through the call seam alone: {len(seam_slower)} ({len(seam_clearly)})" if seam else ""
    )
    return [
        (f"jit corpus, {latency}: median wall / CP", "≤ 1.15", f"{median:.3f} over "
         f"{len(ratios)} programs", median <= 1.15),
        (f"jit corpus, {latency}: programs slower under jit than plain", "0",
         f"{len(slower)} of {len(jit)} ({len(clearly)} beyond noise: sign test, p < 0.05)"
         + floor, not slower),
    ]  # fmt: skip


def _tally(
    rows: list[Row], kind: str = "ember"
) -> tuple[list[Row], list[float], list[Row], list[str]]:
    """The rows of `kind` (jit's, or the seam's), their wall/CP ratios, the slower ones
    than plain, and the names of those slower beyond noise."""
    timed = [r for r in rows if r.kind == kind]
    plain = {r.scenario: r.median_s for r in rows if r.kind == "plain"}
    ratios = [r.ratio for r in timed if r.ratio is not None]
    slower = [r for r in timed if r.median_s > plain[r.scenario]]
    clearly = [r.scenario for r in slower if _sign_test(r.extra["paired_ms"]) < 0.05]
    return timed, ratios, slower, clearly


def _summarise(rows: list[Row], latency: float, log: Callable[[str], None]) -> None:
    jit, ratios, slower, clearly = _tally(rows)
    note = (
        f"corpus at {latency * 1e3:.0f} ms per leaf: median wall / critical path "
        f"{statistics.median(ratios):.3f} over {len(ratios)} programs (goal <= 1.15); "
        f"{len(slower)} of {len(jit)} slower under jit than plain (goal 0)"
        + (f": {', '.join(_by(r) for r in slower)}" if slower else "")
        + f"; of those, slower in a sign test over the paired runs (p < 0.05): {len(clearly)}"
        + (f" ({', '.join(clearly)})" if clearly else "")
    )
    seam, _, seam_slower, seam_clearly = _tally(rows, "seam")
    if seam:
        note += (
            f". Through the call seam alone (the plain body with a handler that only runs "
            f"each operator call: the least any jit that sees the calls pays): "
            f"{len(seam_slower)} of {len(seam)} slower than plain, {len(seam_clearly)} "
            "beyond noise"
        )
    NOTES.append(note)
    log(f"[corpus] {note}")


def _by(row: Row) -> str:
    """`name +0.42 ms`: the median of the program's paired differences, jit minus plain."""
    return f"{row.scenario} {statistics.median(row.extra['paired_ms']):+.2f} ms"


def _sign_test(differences: list[float]) -> float:
    """One-sided p-value that jit is slower more often than not (ties dropped)."""
    slower = sum(d > 0 for d in differences)
    n = slower + sum(d < 0 for d in differences)
    return sum(math.comb(n, k) for k in range(slower, n + 1)) / 2**n if n else 1.0


# --- the cost of one dynamically dispatched call -------------------------------------------

_FAN = """
def fan(question):
    return [noop(question) for _ in range({n})]
"""


def _dynamic_cost(log: Callable[[str], None], n: int = 200, repeats: int = 30) -> str:
    """CPU time (all threads) per leaf call: wall time on a shared machine is too noisy
    for a few microseconds. The least of three rounds' medians."""
    noop = xcs.op(lambda q: q, name="noop")
    as_written: dict[str, Any] = {"noop": noop}
    exec(_FAN.format(n=n), as_written)  # noqa: S102 - a body with no source: run as written
    fan = _rewritable(noop, n)
    figures = {
        "cached plan replay": xcs.jit(fan, mode="trace"),
        "dynamic, rewritten body": xcs.jit(fan, mode="dynamic"),
        "dynamic, body as written": xcs.jit(as_written["fan"], mode="dynamic"),
    }
    best = dict.fromkeys(figures, float("inf"))
    for _ in range(3):
        for name, jitted in figures.items():
            jitted("warm")
            times = [_cpu(lambda j=jitted: j("q")) for _ in range(repeats)]
            best[name] = min(best[name], statistics.median(times) / n * 1e6)
    parts = [f"{name} {us:.1f} us" for name, us in best.items()]
    note = f"CPU per leaf call ({n} independent no-op calls per jitted call): " + ", ".join(parts)
    log(f"[corpus] {note}")
    return note


def _rewritable(noop: Any, n: int) -> Callable[[str], list[str]]:
    def fan(question: str) -> list[str]:
        return [noop(question) for _ in range(n)]

    return fan


# --- the cost of a call nothing can overlap ----------------------------------------------------


def _serial_cost(log: Callable[[str], None]) -> str:
    """Wall time per call that a width-1 chain adds under `jit(mode="dynamic")`: median of
    a chain's time minus plain Python's, over its calls."""
    parts = []
    for latency, n, repeats in ((0.0, 100, 30), (0.001, 20, 15)):
        step = xcs.op(lambda x, s=latency: _sleep_then(x, s), name="step")
        plain = _chain_of(step)
        jitted = xcs.jit(plain, mode="dynamic")
        times = {}
        for name, fn in (("plain", plain), ("jit", jitted)):
            fn(0, n)
            times[name] = statistics.median(
                _time(lambda f=fn, k=n: f(0, k)) for _ in range(repeats)
            )
        extra = (times["jit"] - times["plain"]) / n * 1e6
        parts.append(
            f"{n} x {latency * 1e3:g} ms leaves: plain {times['plain'] * 1e3:.2f} ms, jit "
            f"{times['jit'] * 1e3:.2f} ms ({extra:+.0f} us a call)"
        )
    note = "serial chain (each call needs the last one's value): " + "; ".join(parts)
    log(f"[corpus] {note}")
    return note


def _sleep_then(x: int, seconds: float) -> int:
    if seconds:
        time.sleep(seconds)
    return x + 1


def _chain_of(step: Any) -> Callable[[int, int], int]:
    def chain(x: int, n: int) -> int:
        for _ in range(n):
            x = step(x)
            if x < 0:  # uses the value before the next call: width 1
                break
        return x

    return chain
