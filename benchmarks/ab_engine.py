"""A/B the engine hot paths of two checkouts, side by side in one run.

    python benchmarks/ab_engine.py BASE_CHECKOUT [NEW_CHECKOUT] [--rounds 5]

Each round runs one child process per checkout, alternating which goes first, so both
see the same machine load. A child imports `ember_xcs` and `ember_xcs_bench` from its own
checkout and measures (medians over the runs inside the child):

- `seq_us_node`, `par_us_node`: `execute_graph` on the 2,000-node no-op grid;
- `replay_us_node_{100,1000,10000}`: a cached `jit` plan of a no-op grid, per node;
- `dyn_us_call`: `jit(mode="dynamic")` of a body making 200 independent no-op leaf calls,
  per call (the cost of dynamic dispatch on the body's thread plus the drain);
- `depth2_{50,5}ms`: the depth-2 ensemble (111 simulated calls) under `jit`, wall /
  critical path, beside a hand-written `ThreadPoolExecutor` and `asyncio.gather`.

The parent prints each metric's median over rounds for both checkouts and the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def child() -> dict[str, float]:
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    import ember_xcs as xcs
    from ember_xcs_bench._case import build_case
    from ember_xcs_bench._programs import Layered
    from ember_xcs_bench._scenarios import ensemble_depth2

    out: dict[str, float] = {}
    case = build_case("grid", lambda _l: Layered(40, 50), 0.0, inputs=lambda k: 7 + k)
    g = case.graph
    from ember_xcs_bench._lowering import root_parameters

    names = root_parameters(case.lowered)
    for sched in ("sequential", "parallel"):
        options = xcs.ExecutionOptions(scheduler=sched)
        run = lambda o=options: xcs.execute_graph(g, dict.fromkeys(names, 3), options=o)  # noqa: E731
        run()
        out[f"{sched[:3]}_us_node"] = _median_time(run, 15) / 2000 * 1e6
    for size in (100, 1000, 10000):
        program = xcs.jit(Layered(max(1, size // 50), min(size, 50)))
        program(1)
        out[f"replay_us_node_{size}"] = _median_time(lambda p=program: p(2), 9) / size * 1e6

    @xcs.op
    def leaf(i: int) -> int:
        return i

    @xcs.jit(mode="dynamic")
    def fan(n: int) -> list:
        return [leaf(i) for i in range(n)]

    fan(200)
    out["dyn_us_call"] = _median_time(lambda: fan(200), 15) / 200 * 1e6

    for ms in (50, 5):
        latency = ms / 1000
        program = xcs.jit(ensemble_depth2(latency))
        program("warm")
        critical = 3 * latency
        out[f"depth2_{ms}ms_jit"] = _median_time(lambda p=program: p("q"), 5) / critical
        units = [lambda q, s=latency: time.sleep(s) or q for _ in range(111)]
        pool = ThreadPoolExecutor(128)

        def threads(pool: ThreadPoolExecutor = pool, units: list = units) -> None:
            for width in (100, 10, 1):  # units, sub-judges, the top judge
                list(pool.map(lambda u: u("q"), units[:width]))

        threads()
        out[f"depth2_{ms}ms_threadpool"] = _median_time(threads, 5) / critical
        pool.shutdown()

        async def gather(latency: float = latency) -> None:
            async def call() -> None:
                await asyncio.sleep(latency)

            await asyncio.gather(*(call() for _ in range(100)))
            await asyncio.gather(*(call() for _ in range(10)))
            await call()

        out[f"depth2_{ms}ms_asyncio"] = _median_time(lambda: asyncio.run(gather()), 5) / critical
    return out


def main() -> None:
    if os.environ.get("AB_CHILD"):
        print(json.dumps(child()))
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("base")
    parser.add_argument("new", nargs="?", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    checkouts = {"base": args.base, "new": args.new}
    results: dict[str, list[dict[str, float]]] = {"base": [], "new": []}
    for r in range(args.rounds):
        order = ["base", "new"] if r % 2 == 0 else ["new", "base"]
        for name in order:
            env = dict(os.environ, AB_CHILD="1", PYTHONPATH=checkouts[name], JAX_PLATFORMS="cpu")
            proc = subprocess.run(
                [sys.executable, __file__],
                env=env,
                capture_output=True,
                text=True,
                check=True,
                cwd=checkouts[name],
            )
            results[name].append(json.loads(proc.stdout.strip().splitlines()[-1]))
    print(f"{'metric':28} {'base':>10} {'new':>10} {'new/base':>9}")
    for key in results["base"][0]:
        b = statistics.median(r[key] for r in results["base"])
        n = statistics.median(r[key] for r in results["new"])
        print(f"{key:28} {b:10.3f} {n:10.3f} {n / b:9.2f}")


if __name__ == "__main__":
    main()
