"""The `ember-xcs` command: `demo`, `bench`, `doctor`, `cache` and `run`.

`demo` runs the flagship mixed pipeline (JAX on a simulated 8-device mesh + parallel
simulated LLM calls under one `xcs.jit`; `--graph` runs the explicit-graph demo instead); `bench` runs the benchmark suite (see `benchmarks/`);
`doctor` prints what this machine offers (JAX version, devices, optional extras);
`cache` shows the size of the HTTP models' response cache (`cache clear` empties it).
`run module:attribute` runs a graph or function and prints JSON (see `_run_command`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ._run_command import add_run_parser

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    if args.graph:
        from ._demo import run_demo

        return run_demo(quick=args.quick, timeline_path=args.timeline)
    from ._demo_pipeline import run_mixed_demo

    return run_mixed_demo(quick=args.quick, timeline_path=args.timeline)


def _bench(args: argparse.Namespace) -> int:
    from ember_xcs_bench._entry import run_bench

    return run_bench(list(args.bench_args))


def _doctor(args: argparse.Namespace) -> int:
    import platform

    import jax

    print(f"ember_xcs {__import__('ember_xcs').__version__} on Python {platform.python_version()}")
    print(f"jax {jax.__version__}: backend {jax.default_backend()}, {jax.device_count()} device(s)")
    for extra in ("aiohttp", "distributed", "langgraph", "matplotlib"):
        try:
            module = __import__(extra)
            print(f"{extra}: {getattr(module, '__version__', 'installed')}")
        except ImportError:
            print(f"{extra}: not installed")
    return 0


def _cache(args: argparse.Namespace) -> int:
    """`ember-xcs cache [info|clear] [--path FILE]`."""
    from .models import ResponseCache

    cache = ResponseCache(args.path)
    try:
        if args.action == "clear":
            print(f"cleared {cache.clear()} cached response(s) from {cache.path}")
        else:
            print(f"{len(cache)} cached response(s), {cache.size_bytes():,} bytes at {cache.path}")
    finally:
        cache.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember-xcs", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="run the flagship demo pipeline")
    demo.add_argument("--quick", action="store_true", help="shorter latencies, for smoke tests")
    demo.add_argument(
        "--graph",
        action="store_true",
        help="run the explicit-graph demo (20 slow calls -> join) instead of the mixed pipeline",
    )
    demo.add_argument(
        "--timeline",
        metavar="PATH",
        help="write the parallel run's timeline as Chrome trace JSON (open it in Perfetto)",
    )
    demo.set_defaults(func=_demo)
    bench = sub.add_parser(
        "bench",
        help="run the benchmark suite (see benchmarks/); other options go to the suite",
        add_help=False,
    )
    bench.add_argument(
        "bench_args", nargs=argparse.REMAINDER, help="passed to the suite, e.g. --quick"
    )
    bench.set_defaults(func=_bench)
    doctor = sub.add_parser("doctor", help="print versions and devices")
    doctor.set_defaults(func=_doctor)
    cache = sub.add_parser("cache", help="show the size of the response cache, or clear it")
    cache.add_argument("action", nargs="?", choices=("info", "clear"), default="info")
    cache.add_argument("--path", help="the cache file (default: the models' default cache)")
    cache.set_defaults(func=_cache)
    add_run_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["bench"]:
        # the suite parses its own options (`--quick`, `--out DIR`, ...), verbatim and in order
        return int(_bench(argparse.Namespace(bench_args=argv[1:])) or 0)
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
