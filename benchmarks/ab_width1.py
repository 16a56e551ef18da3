"""What `jit` adds to a width-1 program: a router whose two leaf calls cannot overlap.

    python benchmarks/ab_width1.py gaps [--latency-ms 50] [--rounds 30]
    python benchmarks/ab_width1.py calls N
    python benchmarks/ab_width1.py floor [--latency-ms 50] [--rounds 40]

`gaps` runs the router plainly and under `xcs.jit` in alternating rounds and prints the
median time from entry to the first leaf call, between the two calls and from the last
call to the return, for both (the leaves stamp the clock as they start and end).

`floor` asks how much of jit's gaps any jit must pay: it runs, in rotating order, the
router plainly, *as written* with a call handler that only runs each leaf call (the
seam every jit needs to see the calls: `ember_xcs_bench._corpus.through_seam`),
*rewritten* (jit's rewritten body, the same handler, real values), and under
`xcs.jit`, and prints each one's median gaps.

`calls N` runs N jitted calls with no-op leaves after a warm-up and nothing else, for
counting machine instructions, which a shared machine's load does not disturb: run it
under `valgrind --tool=callgrind` with N and with 0, subtract and divide by N. The
lone-call starter is switched off there (its thread would be counted too). Figures in
`benchmarks/RESULTS.md` ("A width-1 call's cost").
"""

from __future__ import annotations

import argparse
import logging
import statistics
import time
from typing import Any

import ember_xcs as xcs

LATENCY = [0.0]
STAMPS: list[float] = []


def _leaf(name: str, answer):
    def body(prompt: str) -> str:
        STAMPS.append(time.perf_counter())
        if LATENCY[0]:
            time.sleep(LATENCY[0])
        out = answer(prompt)
        STAMPS.append(time.perf_counter())
        return out

    body.__name__ = body.__qualname__ = name
    return xcs.op(body, name=name)


classify = _leaf("classify", lambda p: "math" if "2" in p else "chat")
solve = _leaf("solve", lambda p: f"solved {p}")
chat = _leaf("chat", lambda p: f"chat {p}")


def router(message: str) -> str:
    label = classify(f"Classify: {message}")
    if label == "math":
        return solve(message)
    return chat(message)


def gaps(latency: float, rounds: int) -> None:
    LATENCY[0] = latency
    _print_gaps([("plain", router), ("jit", xcs.jit(router))], rounds)


def _print_gaps(ways: list[tuple[str, Any]], rounds: int) -> None:
    """Run each way in rotating order (each goes first in turn); print its median gaps."""
    for i in range(5):
        assert len({fn(f"2+{i}") for _, fn in ways}) == 1
    found: dict[str, list[tuple[float, ...]]] = {name: [] for name, _ in ways}
    for r in range(rounds):
        turn = r % len(ways)
        for name, fn in ways[turn:] + ways[:turn]:
            STAMPS.clear()
            start = time.perf_counter()
            fn(f"2+{r}")
            end = time.perf_counter()
            first, ended, second, last = STAMPS
            found[name].append((first - start, second - ended, end - last))
    for name, rows in found.items():
        entry, between, exit_ = (statistics.median(c) * 1e6 for c in zip(*rows, strict=True))
        print(f"{name:10s} entry {entry:6.1f} us  between {between:6.1f} us  exit {exit_:6.1f} us")


def floor(latency: float, rounds: int) -> None:
    from ember_xcs._jit._rewrite import entry
    from ember_xcs_bench._corpus import through_seam

    LATENCY[0] = latency
    ways = [
        ("plain", router),
        ("as written", through_seam(router)),
        ("rewritten", through_seam(entry(router))),
        ("jit", xcs.jit(router)),
    ]
    _print_gaps(ways, rounds)


def calls(n: int) -> None:
    from ember_xcs.scheduling import _engine

    _engine.watch = lambda run, index: None  # the starter thread would be counted too
    jitted = xcs.jit(router)
    for _ in range(100 + n):
        jitted("2+1")


def main() -> None:
    logging.getLogger("ember_xcs.jit").setLevel(logging.ERROR)  # the width-1 warning
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("gaps")
    g.add_argument("--latency-ms", type=float, default=50.0)
    g.add_argument("--rounds", type=int, default=30)
    f = sub.add_parser("floor")
    f.add_argument("--latency-ms", type=float, default=50.0)
    f.add_argument("--rounds", type=int, default=40)
    c = sub.add_parser("calls")
    c.add_argument("n", type=int)
    args = parser.parse_args()
    if args.what == "gaps":
        gaps(args.latency_ms / 1e3, args.rounds)
    elif args.what == "floor":
        floor(args.latency_ms / 1e3, args.rounds)
    else:
        calls(args.n)


if __name__ == "__main__":
    main()
