"""RESULTS.md, results.json and the regression check.

`RESULTS.md` is regenerated on every run: a stamp (date, machine, versions, settings), the
goals with their measured figures, then one table per section. Sections this module does
not write (`GENERATED`) were recorded by hand (a measurement script's figures, a before
and after) and are kept as they are, after the tables: a run must not erase them, and
they say themselves when and how they were measured. `results.json` holds the
same rows in machine-readable form; the next run compares against it and prints every row
whose headline ratio (wall / critical path, us/node, or ratio vs raw JAX; lower is better)
got worse by more than 20 %. The check is informational and never fails.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import statistics
from collections.abc import Callable, Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

from ._goals import Goal, evaluate_goals
from ._rows import Row

__all__ = [
    "GENERATED", "compare", "load_rows", "recorded_by_hand", "stamp", "write_json",
    "write_markdown",
]  # fmt: skip

REGRESSION_THRESHOLD = 1.20
_PACKAGES = ("ember_xcs", "jax", "jaxlib", "numpy", "networkx", "dask", "distributed")
_PACKAGES += ("langgraph", "aiohttp", "openai", "httpx", "matplotlib")


def stamp(settings: Any, seconds: float, argv: list[str]) -> dict[str, Any]:
    """Where and how the results were produced."""
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": _machine(),
        "python": platform.python_version(),
        "versions": {name: _version(name) for name in _PACKAGES},
        "mode": "quick" if settings.quick else "full",
        "repeats": settings.repeats,
        "latencies_ms": [round(x * 1000, 3) for x in settings.latencies],
        "argv": argv,
        "seconds": round(seconds, 1),
        "load_after": _load(),
    }


def _load() -> str:
    """1/5/15-minute load averages: other work on the machine shows up in every figure."""
    try:
        return " / ".join(f"{x:.1f}" for x in os.getloadavg())
    except (OSError, AttributeError):
        return "unknown"


def _machine() -> str:
    memory = ""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        pass
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} CPUs{memory}"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


# --- json ---------------------------------------------------------------------------------


def write_json(path: Path, rows: list[Row], info: dict[str, Any]) -> None:
    payload = {"stamp": info, "rows": [r.to_json() for r in rows]}
    path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")


def load_rows(path: Path) -> tuple[dict[str, Any], list[Row]]:
    """The stamp and rows of a results.json (empty when missing or unreadable)."""
    try:
        payload = json.loads(path.read_text())
        return payload.get("stamp", {}), [Row.from_json(r) for r in payload.get("rows", [])]
    except (OSError, ValueError, TypeError):
        return {}, []


def compare(fresh: list[Row], recorded: list[Row], threshold: float = REGRESSION_THRESHOLD):
    """(compared count, lines for rows whose ratio grew by more than `threshold`)."""
    before = {r.key: r for r in recorded if r.ratio and r.ok}
    lines, compared = [], 0
    for row in fresh:
        old = before.get(row.key)
        if old is None or not row.ratio:
            continue
        compared += 1
        change = row.ratio / old.ratio
        if change > threshold:
            lines.append(
                f"{row.key}: {row.ratio_name} {old.ratio:.3g} -> {row.ratio:.3g} "
                f"({(change - 1) * 100:+.0f} %)"
            )
    return compared, lines


# --- markdown -----------------------------------------------------------------------------


def write_markdown(
    path: Path, rows: list[Row], info: dict[str, Any], notes: list[str], plots: list[str]
) -> None:
    kept = recorded_by_hand(path.read_text()) if path.exists() else []
    parts = [_header(info), _goals_table(evaluate_goals(rows, info))]
    parts += [section(rows) for section in _SECTIONS]
    parts += [*kept, _skipped(rows), _notes(notes), _plots(plots)]
    path.write_text("\n\n".join(p for p in parts if p) + "\n")


def recorded_by_hand(markdown: str) -> list[str]:
    """The `## ` sections of a `RESULTS.md` that this module does not write, in order."""
    sections = re.split(r"(?m)^(?=## )", markdown)[1:]  # the part before them is the stamp
    return [s.rstrip() for s in sections if s[3:].split("\n", 1)[0].strip() not in GENERATED]


def _header(info: dict[str, Any]) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items())
    latencies = " and ".join(f"{x:g} ms" for x in info["latencies_ms"])
    return "\n".join(
        [
            "# ember_xcs benchmark results",
            "",
            "Regenerated by `ember-xcs bench` (see `benchmarks/README.md`), which keeps the "
            "sections it does not write: those were recorded by hand and say how.",
            "",
            f"- **Date:** {info['date']}; the run took {info['seconds']:.0f} s",
            f"- **Machine:** {info['machine']}; Python {info['python']}; load average "
            f"(1/5/15 min) when the run ended: {info.get('load_after', 'not recorded')}",
            f"- **Versions:** {versions}",
            f"- **Settings:** {info['mode']} mode, median of {info['repeats']} timed runs "
            f"after warm-up (no-op grids: at least 15), simulated LLM latency L = {latencies}; "
            f"command `{' '.join(['ember-xcs bench', *info['argv']])}`",
            *_refreshed(info),
            "- **Columns:** *wall/CP* = median wall time / exact critical path of the graph; "
            "*speedup* = plain Python median / this median; *vs best baseline* = this median "
            "/ the fastest baseline's (< 1 is faster than every baseline).",
        ]
    )


def _refreshed(info: dict[str, Any]) -> list[str]:
    return [f"- **Partly refreshed:** {line}" for line in info.get("refreshed", [])]


def _goals_table(goals: list[Goal]) -> str:
    lines = ["## Goals", "", "| goal | target | measured | status |", "|---|---|---|---|"]
    lines += [f"| {g.name} | {g.target} | {g.measured} | {g.status} |" for g in goals]
    return "\n".join(lines)


def _fmt(value: float | None, spec: str = ".2f", suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    return f"{value:{spec}}{suffix}"


def _ms(seconds: float) -> str:
    return _fmt(seconds * 1e3, ".2f" if seconds < 1 else ".0f")


def _answer(row: Row) -> str:
    return "ok" if row.ok else "**WRONG**"


def _table(
    title: str,
    intro: str,
    rows: Iterable[Row],
    columns: list[tuple[str, Callable[[Row], str]]],
    group: Callable[[Row], str],
) -> str:
    rows = [r for r in rows if r.measured]
    if not rows:
        return ""
    head = "| " + " | ".join(["case", *(c[0] for c in columns)]) + " |"
    lines = [f"## {title}", "", intro, "", head, "|" + "---|" * (len(columns) + 1)]
    previous = None
    for row in rows:
        label = group(row)
        shown = label if label != previous else ""
        previous = label
        lines.append("| " + " | ".join([shown, *(fn(row) for _, fn in columns)]) + " |")
    return "\n".join(lines)


_TIMES = [
    ("median ms", lambda r: _ms(r.median_s)),
    ("min", lambda r: _ms(r.min_s)),
    ("max", lambda r: _ms(r.max_s)),
]


def _llm_group(row: Row) -> str:
    extra = row.extra
    cp = _fmt((row.cp_s or 0) * 1e3, ".0f")
    return (
        f"{row.scenario} @ {row.latency_ms:g} ms ({extra.get('calls')} calls, CP "
        f"{extra.get('cp_calls')} = {cp} ms)"
    )


def _llm_table(rows: list[Row], section: str, title: str, intro: str) -> str:
    columns = [
        ("variant", lambda r: r.variant),
        *_TIMES,
        ("wall/CP", lambda r: _fmt(r.wall_over_cp)),
        ("speedup", lambda r: _fmt(r.speedup, ".1f", "x")),
        ("vs best baseline", lambda r: _fmt(r.vs_best_baseline)),
        ("answers", _answer),
    ]
    chosen = [r for r in rows if r.section == section]
    return _table(title, intro, chosen, columns, _llm_group)


def _llm_section(rows: list[Row]) -> str:
    return _llm_table(
        rows,
        "llm",
        "Standard scenarios",
        "Simulated LLM calls sleep L on a thread (the asyncio baseline awaits `asyncio.sleep`). "
        "Every row is checked against the program's own answers.",
    )


def _workers_section(rows: list[Row]) -> str:
    return _llm_table(
        rows,
        "workers",
        "Worker counts (ensemble + judge, depth 2)",
        "`max_workers` caps the calls in flight; with 1 worker the parallel scheduler runs the "
        "111 calls one by one.",
    )


def _per_node_table(rows: list[Row], section: str, title: str, intro: str) -> str:
    columns = [
        ("variant", lambda r: r.variant),
        *_TIMES,
        ("us/node", lambda r: _fmt(r.us_per_node, ".1f")),
        ("vs best baseline", lambda r: _fmt(r.vs_best_baseline)),
        ("answers", _answer),
    ]
    chosen = [r for r in rows if r.section == section]
    return _table(title, intro, chosen, columns, lambda r: f"{r.scenario} ({r.nodes} nodes)")


def _overhead_section(rows: list[Row]) -> str:
    return _per_node_table(
        rows,
        "overhead",
        "Per-node overhead (no-op grid)",
        "Each node adds two integers from the layer before; us/node = median wall / nodes, "
        "so it includes the ~0.5 us the operator itself costs (see *plain python*).",
    )


def _scale_section(rows: list[Row]) -> str:
    return _per_node_table(
        rows,
        "scale",
        "jit trace and replay vs graph size",
        "*first call* = a fresh program under a fresh `jit` (trace + run); *replay* = later "
        "calls with new inputs (cache hit).",
    )


def _numeric_section(rows: list[Row]) -> str:
    columns = [
        ("variant", lambda r: r.variant),
        *[(name, lambda r, key=key: _us(r, key)) for name, key in _US_COLUMNS],
        ("vs reference", lambda r: _fmt(r.ratio, ".3f")),
        ("answers", _answer),
    ]
    chosen = [r for r in rows if r.section == "numeric"]
    intro = (
        "Run in a subprocess with 8 simulated CPU devices "
        "(`XLA_FLAGS=--xla_force_host_platform_device_count=8`) on a 2-core machine, so "
        "devices share cores. *vs reference* = median of paired per-sample ratios (each ember "
        "sample / the raw JAX sample taken just before it), which cancels load from other "
        "processes; the raw JAX row is 1 by definition."
    )
    return _table("Numeric transforms vs raw JAX", intro, chosen, columns, lambda r: r.scenario)


_US_COLUMNS = [("median us", "median_s"), ("min us", "min_s"), ("max us", "max_s")]


def _us(row: Row, key: str) -> str:
    return _fmt(getattr(row, key) * 1e6, ".1f")


def _http_section(rows: list[Row]) -> str:
    columns = [
        ("variant", lambda r: r.variant),
        *_TIMES,
        ("wall/CP", lambda r: _fmt(r.wall_over_cp)),
        ("client CPU ms per run", lambda r: _fmt(r.extra.get("cpu_ms"), ".1f")),
        ("req/s", lambda r: _fmt(r.extra.get("req_per_s"), ".0f")),
        ("CPU ms per request", lambda r: _fmt(r.extra.get("cpu_ms_per_request"), ".3f")),
        ("answers", _answer),
    ]
    return _table(
        "HTTP: ember_xcs's HTTP model against hand-written clients",
        "Every contender against the same loopback `OpenAITestServer` in a child process "
        "(so CPU is the client's): the depth-2 ensemble (111 calls, server latency L), "
        "2,000 requests with 100 in flight against a 0 ms server (throughput), and a "
        "response-cache hit. See `ember_xcs_bench/_http.py`.",
        [r for r in rows if r.section == "http"],
        columns,
        lambda r: _llm_group(r) if r.cp_s else r.scenario,
    )


def _corpus_section(rows: list[Row]) -> str:
    plain = {r.scenario: r.median_s for r in rows if r.section == "corpus" and r.kind == "plain"}

    def paired(row: Row) -> str:
        differences = row.extra.get("paired_ms") or []
        return _fmt(statistics.median(differences), "+.2f") if differences else "—"

    columns = [
        ("strategy", lambda r: str(r.extra.get("strategy", "—"))),
        ("plain ms", lambda r: _ms(plain.get(r.scenario, math.nan))),
        ("jit ms", lambda r: _ms(r.median_s)),
        ("CP ms", lambda r: _ms(r.cp_s) if r.cp_s else "—"),
        ("wall/CP", lambda r: _fmt(r.ratio)),
        ("jit − plain, median of pairs (ms)", paired),
    ]
    return _table(
        CORPUS_TITLE,
        "`ember-xcs bench --sections corpus` (not part of the default run): the programs of "
        "`tests/jit_corpus/`, every input plainly and under `xcs.jit` (default mode) in "
        "alternating pairs after a warm-up; CP = the program's declared depth × L. The "
        "summary (median wall/CP, programs slower than plain, sign test) is under Notes.",
        [r for r in rows if r.section == "corpus" and r.kind == "ember"],
        columns,
        lambda r: r.scenario,
    )


CORPUS_TITLE = "jit corpus: day-one programs, plain vs jit"
# the titles of the `## ` sections written here (`recorded_by_hand` keeps every other one)
GENERATED = frozenset({
    "Goals", "Standard scenarios", "Worker counts (ensemble + judge, depth 2)",
    "Per-node overhead (no-op grid)", "jit trace and replay vs graph size",
    "Numeric transforms vs raw JAX", "HTTP: ember_xcs's HTTP model against hand-written clients",
    CORPUS_TITLE, "Rows not measured", "Notes", "Plots",
})  # fmt: skip

_SECTIONS = [
    _llm_section,
    _workers_section,
    _overhead_section,
    _scale_section,
    _numeric_section,
    _http_section,
    _corpus_section,
]


def _skipped(rows: list[Row]) -> str:
    groups: dict[tuple[str, str, str, bool], list[str]] = {}
    for row in rows:
        if not row.measured and row.note:
            at = row.scenario + (f" @ {row.latency_ms:g} ms" if row.latency_ms else "")
            groups.setdefault((row.section, row.variant, row.note, row.ok), []).append(at)
    if not groups:
        return ""
    lines = ["## Rows not measured", ""]
    for (section, variant, note, ok), where in groups.items():
        label = "" if ok else "**error** "
        lines.append(f"- {label}**{section}: {variant}** ({', '.join(where)}) — {note}")
    return "\n".join(lines)


def _notes(notes: list[str]) -> str:
    if not notes:
        return ""
    return "\n".join(["## Notes", "", *(f"- {n}" for n in notes)])


def _plots(plots: list[str]) -> str:
    if not plots:
        return ""
    return "\n".join(["## Plots", "", *(f"![{Path(p).stem}]({Path(p).name})" for p in plots)])
