"""An explicit graph of N independent `LLMOperator` nodes over the HTTP model: wall time
over the server latency, client CPU per run, and threads alive afterwards.

    PYTHONPATH=CHECKOUT python benchmarks/ab_llm_graph.py [N] [RUNS]

Run it once per checkout, alternating, to compare two trees. The loopback server (latency
50 ms) runs in a child process, so the CPU figure is the client's (`time.process_time`).
Medians over RUNS runs after one warm-up run.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time

import ember_xcs as xcs
from ember_xcs.models import LLMOperator, OpenAICompatibleModel
from ember_xcs_bench._http import _servers

LATENCY = 0.05


def main(n: int, runs: int) -> None:
    with _servers(LATENCY) as (urls, _):
        model = OpenAICompatibleModel(urls["slow"], "bench")
        graph = xcs.Graph()
        for i in range(n):
            graph.add_node(LLMOperator(model, f"Q{i}: {{q}}", sample=i), node_id=f"u{i}")
        xcs.execute_graph(graph, {"q": "warm up"})
        walls, cpus = [], []
        for run in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            out = xcs.execute_graph(graph, {"q": f"run {run}"})
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
            assert all(out[f"u{i}"].startswith("answer-") for i in range(n))
        print(
            f"{n} nodes: wall/latency {statistics.median(walls) / LATENCY:.2f}  "
            f"client CPU {statistics.median(cpus) * 1e3:.1f} ms/run  "
            f"threads alive {threading.active_count()}"
        )


if __name__ == "__main__":
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 100,
        int(sys.argv[2]) if len(sys.argv) > 2 else 15,
    )
