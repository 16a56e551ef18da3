"""The `"dask"` scheduler against `dask.delayed` on the same Dask client.

    python -m ember_xcs_bench._dask_bench [--rounds 5] [--latency 0.05] [--cluster both]
        [--workloads ensemble no-op]

Two workloads, each on an in-process `Client(processes=False)` and on a 2-worker
`LocalCluster` (separate processes) bound to 127.0.0.1:

- `ensemble`: the depth-2 ensemble (10 x (10 calls + a judge) + a judge: 111 calls,
  critical path 3 calls), each call sleeping `--latency` seconds;
- `no-op`: 2,000 nodes that return at once (50 chains of 40), per-node cost.

Variants, run in interleaved rounds (every round runs each once, in a fresh random
order): `dask graph` (`scheduler="dask"`: the plan as one Dask graph), `dask engine`
(`scheduler="dask"` with `max_workers` set, which takes the engine loop submitting each
ready call: how the scheduler worked before the graph path), and `dask.delayed` (the same
functions as `dask.delayed` calls, computed with `client.compute` on the same client).
The functions live in this module, so cluster workers can import them.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

from ember_xcs._options import ExecutionOptions
from ember_xcs.graph import Graph
from ember_xcs.scheduling import execute_graph

GROUPS, UNITS = 10, 10
CHAINS, LENGTH = 50, 40


def unit(x: float) -> str:
    time.sleep(x)
    return "a"


def timed_judge(latency: float, *answers: str) -> str:
    time.sleep(latency)
    return max(answers)


def noop(*values: Any) -> int:
    return 0


def ensemble_graph(latency: float) -> Graph:
    g = Graph()
    final = g.add_node(_Judge(latency), node_id="final")
    for k in range(GROUPS):
        j = g.add_node(_Judge(latency), node_id=f"judge{k}")
        for u in range(UNITS):
            n = g.add_node(unit, node_id=f"u{k}_{u}")
            g.connect(n, j)
        g.connect(j, final)
    return g


class _Judge:
    """A picklable judge with its latency bound (a module-level class)."""

    def __init__(self, latency: float):
        self.latency = latency
        self.__name__ = "judge"

    def __call__(self, *answers: str) -> str:
        return timed_judge(self.latency, *answers)


def noop_graph() -> Graph:
    g = Graph()
    for c in range(CHAINS):
        prev = g.add_node(noop, node_id=f"n{c}_0")
        for i in range(1, LENGTH):
            node = g.add_node(noop, node_id=f"n{c}_{i}")
            g.connect(prev, node)
            prev = node
    return g


def ensemble_delayed(latency: float) -> Any:
    import dask

    judges = []
    for _ in range(GROUPS):
        units = [dask.delayed(unit, pure=False)(latency) for _ in range(UNITS)]
        judges.append(dask.delayed(timed_judge, pure=False)(latency, *units))
    return dask.delayed(timed_judge, pure=False)(latency, *judges)


def noop_delayed() -> list[Any]:
    import dask

    tails = []
    for _ in range(CHAINS):
        prev = dask.delayed(noop, pure=False)()
        for _ in range(1, LENGTH):
            prev = dask.delayed(noop, pure=False)(prev)
        tails.append(prev)
    return tails


def variants(client: Any, workload: str, latency: float) -> dict[str, Callable[[], Any]]:
    graph = ensemble_graph(latency) if workload == "ensemble" else noop_graph()
    inputs = {"x": latency} if workload == "ensemble" else {}
    options = ExecutionOptions(scheduler="dask", dask_client=client)
    engine = options.replace(max_workers=10_000)  # a cap Dask cannot take: the engine loop

    def delayed() -> Any:
        target = ensemble_delayed(latency) if workload == "ensemble" else noop_delayed()
        return client.compute(target, sync=True)

    return {
        "dask graph": lambda: execute_graph(graph, inputs, options=options),
        "dask engine": lambda: execute_graph(graph, inputs, options=engine),
        "dask.delayed": delayed,
    }


def measure(client: Any, workload: str, latency: float, rounds: int) -> dict[str, list[float]]:
    runs = variants(client, workload, latency)
    for run in runs.values():  # warm-up: imports, worker threads, pickled plans
        run()
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(rounds):
        order = list(runs)
        random.shuffle(order)
        for name in order:
            start = time.perf_counter()
            runs[name]()
            seconds[name].append(time.perf_counter() - start)
    return seconds


def _clients(which: str) -> list[tuple[str, Callable[[], Any]]]:
    import distributed

    def in_process() -> Any:
        return distributed.Client(
            processes=False, n_workers=1, threads_per_worker=128, dashboard_address=":0"
        )

    def cluster() -> Any:
        local = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=64,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
        )
        return distributed.Client(local)

    out = []
    if which in ("both", "in-process"):
        out.append(("in-process Client", in_process))
    if which in ("both", "cluster"):
        out.append(("2-worker LocalCluster", cluster))
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--cluster", choices=("both", "in-process", "cluster"), default="both")
    parser.add_argument("--workloads", nargs="+", choices=("ensemble", "no-op"), default=None)
    args = parser.parse_args(argv)
    print("| client | workload | variant | median | / dask.delayed | wall / CP |")
    print("|---|---|---|---|---|---|")
    for label, make in _clients(args.cluster):
        client = make()
        try:
            for workload in args.workloads or ("ensemble", "no-op"):
                seconds = measure(client, workload, args.latency, args.rounds)
                base = statistics.median(seconds["dask.delayed"])
                for name, values in seconds.items():
                    median = statistics.median(values)
                    if workload == "ensemble":
                        shown = f"{median * 1e3:.1f} ms"
                        cp = f"{median / (3 * args.latency):.2f}"
                    else:
                        shown = f"{median / (CHAINS * LENGTH) * 1e3:.3f} ms/node"
                        cp = "-"
                    print(
                        f"| {label} | {workload} | {name} | {shown} | {median / base:.2f} | {cp} |"
                    )
        finally:
            cluster = getattr(client, "cluster", None)
            client.close()
            if cluster is not None:
                cluster.close()


if __name__ == "__main__":
    main()
