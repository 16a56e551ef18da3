"""Where the time goes: phase timings and profiles that RESULTS.md prints as notes.

- `depth2_phases`: the depth-2 ensemble under the parallel scheduler with a `Timeline`
  attached, split into set-up (call -> first unit starts), dispatch spread (first -> last
  unit start), unit overrun (last unit end - last unit start - L), judge and final lags
  (last input done -> node starts) and the tail (final ends -> `execute_graph` returns).
  The sum of lags is the wall time above the critical path.
- `hot_functions`: cProfile of the calling thread over repeated runs of a no-op grid, the
  top functions by own time in µs per node. cProfile roughly doubles the cost of every
  Python call, so read the shares, not the absolute figures.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import time
from collections.abc import Callable
from typing import Any

from ember_xcs._options import ExecutionOptions
from ember_xcs.scheduling import Timeline, execute_graph

from ._case import Case, build_case
from ._lowering import root_parameters
from ._rows import Row
from ._scenarios import ensemble_depth2

__all__ = ["diagnose_section"]

NOTES: list[str] = []
_PHASES = ("set-up", "dispatch spread", "unit overrun", "judge lag", "final lag", "tail")


def diagnose_section(settings: Any, log: Callable[[str], None]) -> list[Row]:
    """Adds notes (no rows): depth-2 phases per latency, hot functions on the no-op grid."""
    runs = 3 if settings.quick else 10
    for latency in settings.latencies:
        NOTES.append(depth2_phases(latency, runs))
        log(f"[diagnose] {NOTES[-1]}")
    from ._suite import _grid_case

    layers, width = settings.noop_grid
    case = _grid_case(layers, width)
    for scheduler in ("sequential", "parallel"):
        NOTES.append(hot_functions(case, scheduler, runs))
        log(f"[diagnose] {NOTES[-1]}")
    return []


def depth2_phases(latency: float, runs: int) -> str:
    case = build_case("ensemble-depth2", ensemble_depth2, latency)
    options = ExecutionOptions(scheduler="parallel")
    names = root_parameters(case.lowered)
    execute_graph(case.graph, dict.fromkeys(names, "warm"), options=options)
    samples = [_phases(case, names, latency, k) for k in range(runs)]
    parts = ", ".join(
        f"{name} {statistics.median(s[i] for s in samples) * 1e3:.2f}"
        for i, name in enumerate(_PHASES)
    )
    wall = statistics.median(s[-1] for s in samples)
    return (
        f"ensemble-depth2, graph: parallel, L = {latency * 1e3:g} ms: wall {wall * 1e3:.1f} ms "
        f"for a {case.cp_seconds * 1e3:.0f} ms critical path; medians in ms: {parts}"
    )


def _phases(case: Case, names: tuple[str, ...], latency: float, k: int) -> tuple[float, ...]:
    timeline = Timeline()
    options = ExecutionOptions(scheduler="parallel", hooks=(timeline,))
    start = time.perf_counter()
    execute_graph(case.graph, dict.fromkeys(names, f"q{k}"), options=options)
    wall = time.perf_counter() - start
    rec = {r.node_id: r for r in timeline.records}
    units = [r for n, r in rec.items() if n.startswith("u")]
    judges = [rec[f"judge{i}"] for i in range(10)]
    judge_lag = max(
        rec[f"judge{i}"].start - max(rec[f"u{i}_{j}"].end for j in range(10)) for i in range(10)
    )
    last_unit = max(units, key=lambda r: r.start)
    final = rec["final"]
    return (
        min(r.start for r in units) - start,
        last_unit.start - min(r.start for r in units),
        max(r.end for r in units) - last_unit.start - latency,
        judge_lag,
        final.start - max(j.end for j in judges),
        start + wall - final.end,
        wall,
    )


def hot_functions(case: Case, scheduler: str, runs: int, top: int = 6) -> str:
    options = ExecutionOptions(scheduler=scheduler)
    names = root_parameters(case.lowered)
    execute_graph(case.graph, dict.fromkeys(names, 1), options=options)
    profile = cProfile.Profile()
    profile.enable()
    for k in range(runs):
        execute_graph(case.graph, dict.fromkeys(names, k), options=options)
    profile.disable()
    stats = pstats.Stats(profile).stats  # (file, line, name) -> (cc, nc, tt, ct, callers)
    per_node = 1e6 / (runs * case.nodes)
    ranked = sorted(stats.items(), key=lambda item: -item[1][2])[:top]
    listed = "; ".join(f"`{_where(key)}` {value[2] * per_node:.2f}" for key, value in ranked)
    return (
        f"cProfile, graph: {scheduler}, {case.nodes} no-op nodes, calling thread only, own time "
        f"in µs/node (inflated by profiling): {listed}"
    )


def _where(key: tuple[str, int, str]) -> str:
    filename, line, name = key
    if filename == "~":
        return name
    return f"{filename.rsplit('/', 1)[-1]}:{line} {name}"
