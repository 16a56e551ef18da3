"""The sections of the suite: which cases run, against which contenders, how often.

| section | cases | contenders |
|---|---|---|
| `llm` | every standard scenario at every latency | plain, graph x scheduler, jit x mode, baselines |
| `workers` | `ensemble-depth2` at the smallest latency | graph parallel and jit auto at 1/4/16/64/unbounded |
| `overhead` | the 2,000-node no-op grid (40 layers x 50) | as `llm`; reported in us/node |
| `scale` | no-op grids of 100 / 1,000 / 10,000 nodes | jit first call (trace) and replay per mode, graph, plain |

Warm-up: one untimed run for every contender that keeps state between calls (thread
pools, jit caches); none for plain Python and the sequential scheduler, whose first call
does the same work as every other (the graph's plan is built before timing starts).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from ember_xcs.scheduling import plan_for_graph

from . import _variants as v
from ._baselines import BASELINES
from ._case import Case, Runner, as_list, build_case
from ._programs import Layered
from ._rows import Row
from ._scenarios import SCENARIOS, ensemble_depth2, ensemble_depth2_async
from ._timing import Measurement, measure

__all__ = ["Contender", "Settings", "llm_contenders", "run_contenders"]

JIT_MODES = ("auto", "trace", "structural", "dynamic")
GRAPH_SCHEDULERS = ("parallel", "wave", "dask")
WORKER_COUNTS = (1, 4, 16, 64, None)


@dataclasses.dataclass(frozen=True)
class Contender:
    """A named way to run a case; `kind` is plain, ember or baseline."""

    name: str
    kind: str
    make: Callable[[Case], Runner]
    warmup: int = 1
    max_repeats: int | None = None  # for contenders too slow for the section's count


@dataclasses.dataclass
class Settings:
    """What a run covers; `--quick` shrinks every size and runs each case once."""

    quick: bool = False
    latencies: tuple[float, ...] = (0.05, 0.005)
    repeats: int = 5
    scenarios: tuple[str, ...] | None = None
    sections: tuple[str, ...] = (
        "llm",
        "workers",
        "overhead",
        "scale",
        "numeric",
        "http",
        "diagnose",
    )
    noop_grid: tuple[int, int] = (40, 50)
    scale_sizes: tuple[int, ...] = (100, 1_000, 10_000)

    @classmethod
    def for_quick(cls) -> Settings:
        return cls(
            quick=True,
            latencies=(0.002,),
            repeats=1,
            noop_grid=(10, 20),
            scale_sizes=(100, 1_000),
        )

    def warmup(self, contender: Contender) -> int:
        return contender.warmup


def llm_contenders() -> list[Contender]:
    """Plain Python, the explicit graph per scheduler, jit per mode, then the baselines."""
    return [
        Contender("plain python", "plain", v.plain, warmup=0),
        Contender("graph: sequential", "ember", v.graph("sequential"), warmup=0),
        *(Contender(f"graph: {s}", "ember", v.graph(s)) for s in GRAPH_SCHEDULERS),
        *(Contender(f"jit: {m}", "ember", v.jit(m)) for m in JIT_MODES),
        *(Contender(name, "baseline", make) for name, make in BASELINES.items()),
    ]


def worker_contenders() -> list[Contender]:
    """Parallel graph and jit(auto) per worker cap; unbounded first, so it warms the pool."""
    caps = (None, 64, 16, 4, 1)
    graphs = [
        Contender(f"graph: parallel, workers={_cap(c)}", "ember", v.graph("parallel", c), warmup=0)
        for c in caps
    ]
    jits = [
        Contender(f"jit: auto, workers={_cap(c)}", "ember", v.jit("auto", c, shared=True), 0)
        for c in caps
    ]
    graphs[0] = dataclasses.replace(graphs[0], warmup=1)
    jits[0] = dataclasses.replace(jits[0], warmup=1)  # traces; the capped rows reuse the plan
    return graphs + jits


def _cap(workers: int | None) -> str:
    return str(workers) if workers else "unbounded"


def first_call_contender(mode: str, runs: int) -> Contender:
    """jit's first call (trace + run) on a fresh program and a fresh jit every run."""

    def make(case: Case) -> Runner:
        from ember_xcs import jit

        programs = iter([case.fresh_program() for _ in range(runs)])
        sinks = len(case.lowered.sinks)
        return Runner(lambda x: as_list(jit(next(programs), mode=mode)(x), sinks))

    return Contender(f"jit: {mode}, first call", "ember", make, warmup=0)


# --- running --------------------------------------------------------------------------------


def run_contenders(
    section: str,
    case: Case,
    contenders: Iterable[Contender],
    repeats: int,
    log: Callable[[str], None],
) -> list[Row]:
    """Measure every contender on `case`; skipped contenders become rows with a note."""
    plan_for_graph(case.graph)  # built once, outside every timed region
    rows = []
    for contender in contenders:
        runs = min(repeats, contender.max_repeats or repeats)
        m = measure(contender.make, case, warmup=contender.warmup, repeats=runs)
        row = _row(section, case, contender, m)
        log(_progress(row))
        rows.append(row)
    return rows


def _row(section: str, case: Case, contender: Contender, m: Measurement) -> Row:
    return Row(
        section=section,
        scenario=case.scenario,
        variant=contender.name,
        kind=contender.kind,
        latency_ms=round(case.latency * 1000, 3) if case.calls else None,
        median_s=m.median,
        min_s=m.low,
        max_s=m.high,
        runs=len(m.times),
        nodes=case.nodes,
        cp_s=case.cp_seconds or None,
        ok=m.ok,
        note=m.skipped or m.error or _plan_note(case, m.info),
        extra={"calls": case.calls, "cp_calls": case.cp_calls, "width": case.width, **m.info},
    )


def _plan_note(case: Case, info: dict[str, Any]) -> str:
    """Flag a jit row whose plan is not one node per leaf call (it would measure less)."""
    nodes = info.get("plan_nodes")
    if info.get("strategy") in ("trace", "structural") and nodes != case.nodes:
        return f"jit plan has {nodes} nodes for {case.nodes} leaf calls"
    return ""


def _progress(row: Row) -> str:
    if not row.measured:
        return f"  {row.scenario:<18} {row.variant:<34} skipped: {row.note}"
    ratio = (
        f"wall/cp {row.wall_over_cp:5.2f}"
        if row.wall_over_cp
        else f"{row.us_per_node:8.1f} us/node"
    )
    flag = "" if row.ok else f"  ANSWER CHECK FAILED: {row.note}"
    return f"  {row.scenario:<18} {row.variant:<34} {row.median_s * 1e3:9.2f} ms  {ratio}{flag}"


# --- sections -------------------------------------------------------------------------------


def llm_section(settings: Settings, log: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    chosen = [s for s in SCENARIOS if not settings.scenarios or s.name in settings.scenarios]
    for latency in settings.latencies:
        log(f"[llm] L = {latency * 1000:g} ms")
        for scenario in chosen:
            case = build_case(scenario.name, scenario.build, latency)
            rows += run_contenders("llm", case, llm_contenders(), settings.repeats, log)
        if not settings.scenarios or "ensemble-depth2-async" in settings.scenarios:
            rows += _async_depth2(latency, settings, log)
    for row in rows:
        row.ratio, row.ratio_name = row.wall_over_cp, "wall/cp"
    return rows


def _async_depth2(latency: float, settings: Settings, log: Callable[[str], None]) -> list[Row]:
    case = build_case(
        "ensemble-depth2-async", ensemble_depth2_async, latency, reference=ensemble_depth2
    )
    contenders = [
        Contender("graph: parallel", "ember", v.graph("parallel")),
        Contender("jit: auto", "ember", v.jit("auto")),
        Contender("jit: dynamic", "ember", v.jit("dynamic")),
        Contender("asyncio", "baseline", BASELINES["asyncio"]),
    ]
    return run_contenders("llm", case, contenders, settings.repeats, log)


def workers_section(settings: Settings, log: Callable[[str], None]) -> list[Row]:
    """At the smallest latency only: a cap of 1 runs 111 calls in sequence (5.6 s at 50 ms)."""
    latency = min(settings.latencies)
    log(f"[workers] ensemble-depth2, L = {latency * 1000:g} ms")
    case = build_case("ensemble-depth2", ensemble_depth2, latency)
    rows = run_contenders("workers", case, worker_contenders(), settings.repeats, log)
    for row in rows:
        row.ratio, row.ratio_name = row.wall_over_cp, "wall/cp"
    return rows


def overhead_section(settings: Settings, log: Callable[[str], None]) -> list[Row]:
    layers, width = settings.noop_grid
    log(f"[overhead] no-op grid {layers} x {width} = {layers * width} nodes")
    case = _grid_case(layers, width)
    contenders = [_capped(c, settings.repeats) for c in llm_contenders()]
    rows = run_contenders("overhead", case, contenders, _small_repeats(settings), log)
    for row in rows:
        row.ratio, row.ratio_name = row.us_per_node, "us/node"
    return rows


def scale_section(settings: Settings, log: Callable[[str], None]) -> list[Row]:
    rows: list[Row] = []
    repeats = settings.repeats
    for size in settings.scale_sizes:
        log(f"[scale] no-op grid of {size} nodes")
        case = _grid_case(max(1, size // 50), min(size, 50))
        contenders = [
            Contender("plain python", "plain", v.plain, warmup=0),
            Contender("graph: sequential", "ember", v.graph("sequential"), warmup=0),
            Contender("graph: parallel", "ember", v.graph("parallel")),
        ]
        for mode in ("auto", "trace", "structural"):
            contenders.append(first_call_contender(mode, repeats))
            contenders.append(Contender(f"jit: {mode}, replay", "ember", v.jit(mode)))
        contenders.append(Contender("jit: dynamic", "ember", v.jit("dynamic")))
        rows += run_contenders("scale", case, contenders, repeats, log)
    for row in rows:
        row.ratio, row.ratio_name = row.us_per_node, "us/node"
    return rows


_SLOW_ON_GRIDS = ("graph: dask", "dask.delayed", "langgraph")  # milliseconds per node


def _capped(contender: Contender, repeats: int) -> Contender:
    if contender.name in _SLOW_ON_GRIDS:
        return dataclasses.replace(contender, max_repeats=repeats)
    return contender


def _grid_case(layers: int, width: int) -> Case:
    nodes = layers * width
    return build_case(
        f"noop-grid-{nodes}", lambda _latency: Layered(layers, width), 0.0, inputs=_int_input
    )


def _int_input(k: int) -> Any:
    return 7 + k


def _small_repeats(settings: Settings) -> int:
    """Cheap cases get more runs: their medians are noisier (GC, thread wake-ups)."""
    return settings.repeats if settings.quick else max(settings.repeats, 15)


SECTIONS: dict[str, Callable[[Settings, Callable[[str], None]], list[Row]]] = {
    "llm": llm_section,
    "workers": workers_section,
    "overhead": overhead_section,
    "scale": scale_section,
}
