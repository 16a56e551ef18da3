"""Entry point of `ember-xcs bench`: the suite is this package, `ember_xcs_bench`.

Kept as a tiny module so `cli.py` imports nothing heavy until `bench` is asked for.
"""

from __future__ import annotations

__all__ = ["run_bench"]


def run_bench(argv: list[str]) -> int:
    """Run the benchmark suite with command-line arguments `argv`; see `--help`."""
    from ._cli import main

    args = list(argv)
    if args[:1] == ["--"]:  # `ember-xcs bench -- --quick`: the separator is not ours
        args = args[1:]
    return main(args)
