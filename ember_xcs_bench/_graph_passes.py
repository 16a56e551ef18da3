"""What the graph passes save on a retrieval pipeline: interleaved rounds, passes off vs on.

    python -m ember_xcs_bench._graph_passes [--rounds 15] [--scale 1.0]

The pipeline is the kind that grows when two sub-pipelines are merged by hand: both
embed the question and search the index (pure, so they can be merged), the index is
loaded on every run (pure and input-free: a constant), and two debugging sinks (an audit
log and a trace dump) run although only the final answer is wanted. The two LLM calls
are unmarked, so no pass touches them. Simulated latencies sleep on the worker thread.

Each round runs both variants, in alternating order, on a fresh question; the medians,
the calls per run and the answers (which must be equal) are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import ember_xcs as xcs

# simulated milliseconds per call, at --scale 1
LATENCY_MS = {
    "load_index": 40,
    "embed": 10,
    "search": 5,
    "llm_answer": 50,
    "llm_cite": 50,
    "audit_log": 30,
    "trace_dump": 20,
}


def build(scale: float, calls: Counter[str]) -> xcs.Graph:
    """The pipeline; `calls` counts each operator's calls."""
    lock = threading.Lock()

    def simulated(name: str, body: Callable[..., Any], **flags: bool) -> xcs.Operator:
        @functools.wraps(body)  # keeps the signature graphs bind by
        def call(*args: Any, **kwargs: Any) -> Any:
            with lock:
                calls[name] += 1
            time.sleep(LATENCY_MS[name] * scale / 1000)
            return body(*args, **kwargs)

        return xcs.op(call, **flags)

    def load_index() -> list[str]:
        return [f"passage {i}" for i in range(64)]

    def embed(question: str) -> int:
        return sum(map(ord, question))

    def search(index: list[str], vector: int) -> list[str]:
        return [index[(vector + k) % len(index)] for k in range(3)]

    def llm_answer(docs: list[str], question: str) -> str:
        return f"{question} -> {docs[0]}"

    def llm_cite(docs: list[str], question: str) -> str:
        return ", ".join(docs)

    def audit_log(text: str) -> None:
        return None

    def trace_dump(index: list[str]) -> int:
        return len(index)

    ops = {
        "load_index": simulated("load_index", load_index, pure=True),
        "embed": simulated("embed", embed, pure=True),
        "search": simulated("search", search, pure=True),
        "llm_answer": simulated("llm_answer", llm_answer),
        "llm_cite": simulated("llm_cite", llm_cite),
        "audit_log": simulated("audit_log", audit_log),
        "trace_dump": simulated("trace_dump", trace_dump),
    }
    g = xcs.Graph()
    g.add_node(ops["load_index"], node_id="index")
    for branch, llm in (("a", "llm_answer"), ("b", "llm_cite")):
        g.add_node(ops["embed"], node_id=f"embed_{branch}")
        g.add_node(ops["search"], node_id=f"search_{branch}")
        g.add_node(ops[llm], node_id=llm)
        g.add_edge("index", f"search_{branch}", field_mappings={"*": "index"})
        g.add_edge(f"embed_{branch}", f"search_{branch}", field_mappings={"*": "vector"})
        g.add_edge(f"search_{branch}", llm, field_mappings={"*": "docs"})
    g.add_node(lambda answer, cites: f"{answer} [{cites}]", node_id="final")
    g.add_edge("llm_answer", "final", field_mappings={"*": "answer"})
    g.add_edge("llm_cite", "final", field_mappings={"*": "cites"})
    g.add_node(ops["audit_log"], node_id="audit")
    g.add_edge("llm_answer", "audit", field_mappings={"*": "text"})
    g.add_node(ops["trace_dump"], node_id="dump")
    g.add_edge("index", "dump", field_mappings={"*": "index"})
    return g


def measure(rounds: int, scale: float) -> dict[str, Any]:
    """Interleaved rounds of both variants; returns medians, calls per run and a check."""
    off_calls: Counter[str] = Counter()
    on_calls: Counter[str] = Counter()
    variants = {
        "passes off": (build(scale, off_calls), xcs.ExecutionOptions(), off_calls),
        "graph_passes='all'": (
            build(scale, on_calls),
            xcs.ExecutionOptions(graph_passes="all"),
            on_calls,
        ),
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    answers: dict[str, list[Any]] = {name: [] for name in variants}
    report = None
    for r in range(rounds + 1):  # round 0 warms up (and fills the folded constant)
        order = list(variants) if r % 2 else list(reversed(variants))
        for name in order:
            graph, options, _ = variants[name]
            start = time.perf_counter()
            result = xcs.execute_graph(
                graph, {"question": f"question {r}"}, options=options, outputs=["final"]
            )
            if r:
                times[name].append(time.perf_counter() - start)
                answers[name].append(result["final"])
            report = result.stats.graph_passes or report
        if not r:
            off_calls.clear()
            on_calls.clear()
    return {
        "median_ms": {n: 1000 * statistics.median(t) for n, t in times.items()},
        "calls_per_run": {n: sum(c.values()) / rounds for n, (_, _, c) in variants.items()},
        "same_answers": answers["passes off"] == answers["graph_passes='all'"],
        "report": report,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every latency")
    args = parser.parse_args(argv)
    out = measure(args.rounds, args.scale)
    off, on = out["median_ms"].values()
    print(f"| variant | median ms ({args.rounds} interleaved rounds) | operator calls per run |")
    print("|---|---|---|")
    for name, ms in out["median_ms"].items():
        print(f"| {name} | {ms:.1f} | {out['calls_per_run'][name]:.2f} |")
    print(
        f"\nspeed-up {off / on:.2f}x; same answers: {out['same_answers']}; passes: {out['report']}"
    )
    return 0 if out["same_answers"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
