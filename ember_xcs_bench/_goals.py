"""The project's performance goals, evaluated on a run's rows.

Each goal names its target and the measured figure; a miss says by how much. A goal
whose rows are missing (a component not built yet, a section not run) says so instead
of passing. The targets come from the issues and are never loosened here.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from typing import Any

from ._rows import Row

__all__ = ["Goal", "evaluate_goals"]

EMBER_HEADLINERS = ("jit: auto", "graph: parallel")


@dataclasses.dataclass(frozen=True)
class Goal:
    name: str
    target: str
    measured: str
    status: str


def _find(
    rows: Iterable[Row], section: str, scenario: str, variant: str, latency=None
) -> Row | None:
    for row in rows:
        if (
            row.section == section
            and row.scenario == scenario
            and row.variant == variant
            and (latency is None or row.latency_ms == latency)
            and row.measured
        ):
            return row
    return None


def _status(value: float | None, limit: float, ok: bool = True) -> str:
    if value is None:
        return "not measured"
    if not ok:
        return "**wrong answers**"
    if value <= limit:
        return "met"
    return f"**missed** by {_percent(value / limit - 1)}"


def _percent(fraction: float) -> str:
    return f"{fraction * 100:.1f} %" if fraction >= 0.001 else f"{fraction * 100:.2f} %"


def _missing(name: str, target: str, why: str) -> Goal:
    return Goal(name, target, "—", f"not measured: {why}")


def evaluate_goals(rows: list[Row], info: dict[str, Any]) -> list[Goal]:
    goals: list[Goal] = []
    for latency, limit in ((50.0, 1.05), (5.0, 1.15)):
        goals += _depth2_goals(rows, latency, limit)
        goals += _baseline_goals(rows, latency)
        goals += _depth2_goals(rows, latency, limit, "ensemble-depth2-async")
    goals += _fan_in_goal(rows)
    goals += _overhead_goals(rows)
    goals += _scale_goals(rows)
    goals += _numeric_goals(rows)
    goals += _http_goals(rows)
    goals += _corpus_goals(rows)
    return goals


def _depth2_goals(
    rows: list[Row], latency: float, limit: float, scenario: str = "ensemble-depth2"
) -> list[Goal]:
    out = []
    for variant in EMBER_HEADLINERS:
        name = f"{scenario}, L={latency:g} ms, {variant}"
        target = f"wall ≤ {limit:.2f} × CP"
        row = _find(rows, "llm", scenario, variant, latency)
        if row is None:
            out.append(_missing(name, target, _why(rows, "llm", variant)))
            continue
        value = row.wall_over_cp
        measured = f"{row.median_s * 1e3:.1f} ms = {value:.3f} × CP"
        out.append(Goal(name, target, measured, _status(value, limit, row.ok)))
    return out


def _baseline_goals(rows: list[Row], latency: float) -> list[Goal]:
    out = []
    baselines = [
        r
        for r in rows
        if r.section == "llm"
        and r.scenario == "ensemble-depth2"
        and r.latency_ms == latency
        and r.kind == "baseline"
        and r.measured
    ]
    for variant in EMBER_HEADLINERS:
        name = f"ensemble-depth2, L={latency:g} ms, {variant} vs baselines"
        target = "faster than every baseline; ≤ 1.05 × asyncio"
        row = _find(rows, "llm", "ensemble-depth2", variant, latency)
        if row is None or not baselines:
            out.append(_missing(name, target, _why(rows, "llm", variant)))
            continue
        parts, misses = [], []
        for base in baselines:
            ratio = row.median_s / base.median_s
            parts.append(f"{base.variant} {ratio:.2f}×")
            limit = 1.05 if base.variant == "asyncio" else 1.0
            if ratio > limit:
                misses.append(f"{base.variant} by {_percent(ratio / limit - 1)}")
        status = "met" if not misses else "**missed**: " + ", ".join(misses)
        out.append(Goal(name, target, "ember / baseline: " + ", ".join(parts), status))
    return out


def _fan_in_goal(rows: list[Row]) -> list[Goal]:
    name, target = "20 calls + join (ensemble-20), L=50 ms, graph: parallel", "wall ≤ 1.05 × CP"
    row = _find(rows, "llm", "ensemble-20", "graph: parallel", 50.0)
    if row is None:
        return [_missing(name, target, "section llm at 50 ms not run")]
    value = row.wall_over_cp
    return [Goal(name, target, f"{value:.3f} × CP", _status(value, 1.05, row.ok))]


def _overhead_goals(rows: list[Row]) -> list[Goal]:
    over = [r for r in rows if r.section == "overhead" and r.measured]
    if not over:
        return [_missing("per-node overhead", "parallel ≤ 15 µs, sequential ≤ 5 µs", "not run")]
    beside = ", ".join(
        f"{r.variant} {r.us_per_node:.1f}" for r in over if r.kind in ("baseline", "plain")
    )
    out = []
    for variant, limit in (("graph: parallel", 15.0), ("graph: sequential", 5.0)):
        row = next((r for r in over if r.variant == variant), None)
        name = f"per-node overhead, {over[0].nodes} no-op nodes, {variant}"
        value = row.us_per_node if row else None
        measured = f"{value:.1f} µs/node (beside: {beside} µs/node)" if value else "—"
        out.append(Goal(name, f"≤ {limit:g} µs/node", measured, _status(value, limit)))
    return out


def _scale_goals(rows: list[Row]) -> list[Goal]:
    scale = [r for r in rows if r.section == "scale" and r.measured]
    out = []
    for mode in ("auto", "trace", "structural"):
        replay = sorted((r for r in scale if r.variant == f"jit: {mode}, replay"), key=_nodes)
        name = f"jit cached replay ({mode})"
        if not replay:
            out.append(_missing(name, "≤ 15 µs/node", _why(rows, "scale", f"jit: {mode}, replay")))
            continue
        worst = max(r.us_per_node for r in replay)
        out.append(Goal(name, "≤ 15 µs/node", _per_node(replay), _status(worst, 15.0)))
    first = sorted((r for r in scale if r.variant == "jit: auto, first call"), key=_nodes)
    if len(first) >= 2:
        exponent = _loglog_slope([(r.nodes, r.median_s) for r in first])
        status = "met" if exponent <= 1.1 else f"**missed**: time grows as nodes^{exponent:.2f}"
        name = "jit first call (auto: trace + run), linear in nodes"
        target = "time ∝ nodes^k with k ≤ 1.1 (log-log fit)"
        out.append(Goal(name, target, f"k = {exponent:.2f}; {_per_node(first)}", status))
    return out


def _loglog_slope(points: list[tuple[int, float]]) -> float:
    """Least-squares slope of log(time) against log(nodes): 1.0 is exactly linear."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(t) for _, t in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def _nodes(row: Row) -> int:
    return row.nodes


def _per_node(rows: list[Row]) -> str:
    return ", ".join(f"{r.nodes:,} nodes: {r.us_per_node:.1f}" for r in rows) + " µs/node"


def _numeric_goals(rows: list[Row]) -> list[Goal]:
    numeric = [r for r in rows if r.section == "numeric" and r.kind == "ember" and r.measured]
    if not numeric:
        return [
            _missing("numeric vs raw JAX", "≤ 1.05 small, ≤ 1.01 large", _why(rows, "numeric", ""))
        ]
    out = []
    for row in numeric:
        limit = 1.01 if row.extra.get("size") == "large" else 1.05
        if row.extra.get("report_only"):
            continue
        out.append(
            Goal(
                f"{row.scenario}: {row.variant}",
                f"≤ {limit:.2f} × raw JAX",
                f"{row.ratio:.4f}× (median of paired samples)",
                _status(row.ratio, limit, row.ok),
            )
        )
    return out


def _http_goals(rows: list[Row]) -> list[Goal]:
    from ._http import http_goals  # the section knows its own rows

    if not any(r.section == "http" and r.measured for r in rows):
        return [_missing("HTTP ensemble depth 2", "wall vs CP", _why(rows, "http", ""))]
    return [
        Goal(name, target, figure, _status(value, limit, ok))
        for name, target, figure, value, limit, ok in http_goals(rows)
    ]


def _corpus_goals(rows: list[Row]) -> list[Goal]:
    from ._corpus import corpus_goals  # the section knows its own rows

    found = corpus_goals(rows)
    if not found:
        why = "section corpus not run (it is not in the default run: `--sections corpus`)"
        return [_missing("jit corpus", "median wall / CP ≤ 1.15; 0 slower than plain", why)]
    return [
        Goal(name, target, measured, "met" if met else "**missed**")
        for name, target, measured, met in found
    ]


def _why(rows: list[Row], section: str, variant: str) -> str:
    for row in rows:
        if row.section == section and (not variant or row.variant == variant) and row.note:
            return row.note
    return f"section {section} not run"
