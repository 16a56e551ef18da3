"""What observability costs per node: progress bars and timeline recording.

    python -m ember_xcs_bench._observability [--rounds 60] [--scheduler parallel sequential]

Runs the suite's 2,000-node no-op grid (40 layers x 50, `noop-grid-2000`) with
`execute_graph` under each variant, in interleaved rounds in one process: every round runs
each variant once, in a fresh random order, so machine load drifting during the run hits
all variants alike. The added cost of a variant is the median over rounds of its wall
time minus the "off" run's wall time *in the same round*, divided by the node count.

Variants:

- `off`: no hooks (the default options);
- `empty hook`: one `ExecutionHooks()`, whose no-op methods the engine never calls (so
  its figure is this machine's noise);
- `progress, not a terminal`: `progress=True` with stderr a `StringIO` (a log file, CI);
- `progress, bar drawn`: `progress=0` on a fake terminal, so tqdm draws;
- `timeline`: a fresh `Timeline()` recording every node.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from ember_xcs._options import ExecutionOptions
from ember_xcs.scheduling import ExecutionHooks, Timeline, execute_graph

from ._lowering import root_parameters
from ._suite import _grid_case

LAYERS, WIDTH = 40, 50


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _variants(scheduler: str) -> dict[str, Callable[[], tuple[ExecutionOptions, Any]]]:
    """name -> () -> (options, stderr to use or None)."""
    base = ExecutionOptions(scheduler=scheduler)
    return {
        "off": lambda: (base, None),
        "empty hook": lambda: (base.replace(hooks=(ExecutionHooks(),)), None),
        "progress, not a terminal": lambda: (base.replace(progress=True), io.StringIO()),
        "progress, bar drawn": lambda: (base.replace(progress=0), _Terminal()),
        "timeline": lambda: (base.replace(hooks=(Timeline(),)), None),
    }


def measure(scheduler: str, rounds: int) -> dict[str, list[float]]:
    """Seconds per run, per variant, `rounds` interleaved rounds (after one warm-up)."""
    case = _grid_case(LAYERS, WIDTH)
    names, graph = root_parameters(case.lowered), case.graph
    variants = _variants(scheduler)
    times: dict[str, list[float]] = {name: [] for name in variants}
    order = list(variants)
    for round_ in range(rounds + 1):
        random.shuffle(order)
        gc.collect()
        for name in order:
            options, stderr = variants[name]()
            inputs = dict.fromkeys(names, round_)
            redirect = contextlib.redirect_stderr(stderr) if stderr else contextlib.nullcontext()
            with redirect:
                start = time.perf_counter()
                execute_graph(graph, inputs, options=options)
                seconds = time.perf_counter() - start
            if round_:  # round 0 warms up threads, plans and tqdm's import
                times[name].append(seconds)
    return times


def report(scheduler: str, times: dict[str, list[float]]) -> list[str]:
    nodes = LAYERS * WIDTH
    off = times["off"]
    lines = [
        f"{scheduler}, {nodes} nodes, {len(off)} rounds:",
        "| variant | median us/node | added us/node (median of paired differences) |",
        "|---|---|---|",
    ]
    for name, runs in times.items():
        per_node = statistics.median(runs) / nodes * 1e6
        added = statistics.median(v - o for v, o in zip(runs, off, strict=True)) / nodes * 1e6
        lines.append(f"| {name} | {per_node:.2f} | {added:+.2f} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--scheduler", nargs="+", default=["parallel", "sequential"])
    args = parser.parse_args(argv)
    for scheduler in args.scheduler:
        print("\n".join(report(scheduler, measure(scheduler, args.rounds))), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
