"""`ember-xcs bench`: parse the options, run the sections, write and compare the results.

Output goes to `--out`; by default that is the `benchmarks/` folder of the source
checkout the package was imported from (where `RESULTS.md` lives), or
`./ember-xcs-bench` for an installed package. `--quick` never writes there: without
`--out` it uses a fresh temporary folder, so a smoke run can never overwrite the
recorded results.

A run limited with `--sections` or `--scenarios` into a folder that already holds a
`results.json` replaces only the rows it re-measured and keeps the others, so one
section can be refreshed without re-running the whole suite.

`--report-only` re-renders `RESULTS.md` and the plots from a `results.json` without
running anything. It reads `--out` (default: the recorded results) and writes to
`--out` when one is given, else to a fresh temporary folder: the recorded files are
rewritten in place only when asked with `--in-place`.

`--soak MINUTES` runs a jitted pipeline back to back for that long and reports memory,
thread and latency drift (see `_soak`); it writes nothing.

Bad values (`--scenarios typo`, `--latencies abc`) exit with status 2 and a message
naming the valid choices, before anything runs.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

from . import _corpus, _diagnose, _http, _numeric, _suite
from ._plots import write_plots
from ._report import compare, load_rows, stamp, write_json, write_markdown
from ._rows import Row, annotate
from ._scenarios import SCENARIOS

# "ensemble-depth2-async" is the asyncio-baseline variant llm_section adds by name
SCENARIO_NAMES = (*(s.name for s in SCENARIOS), "ensemble-depth2-async")

__all__ = ["default_out_dir", "main"]

SECTIONS = {
    **_suite.SECTIONS,
    "numeric": _numeric.numeric_section,
    "http": _http.http_section,
    "diagnose": _diagnose.diagnose_section,
    "corpus": _corpus.corpus_section,  # not in the default run: `--sections corpus`
}


def default_out_dir() -> Path:
    """`benchmarks/` next to the package in a source checkout, else `./ember-xcs-bench`."""
    checkout = Path(__file__).resolve().parents[1] / "benchmarks"
    if (checkout.parent / "pyproject.toml").exists() and checkout.is_dir():
        return checkout
    return Path.cwd() / "ember-xcs-bench"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ember-xcs bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke: small sizes, one run each")
    parser.add_argument("--out", type=Path, help="folder for RESULTS.md, results.json, PNGs")
    parser.add_argument("--sections", help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset of {', '.join(SCENARIO_NAMES)} (section llm)"
    )
    parser.add_argument("--latencies", help="simulated LLM latencies in ms, e.g. 50,5")
    parser.add_argument("--repeats", type=int, help="timed runs per row (default 5)")
    parser.add_argument("--compare", type=Path, help="results.json to compare against")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="render RESULTS.md and the plots from results.json into --out (default: a "
        "temporary folder); run nothing",
    )
    parser.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="run a jitted pipeline for MINUTES and report memory, threads and latency drift",
    )
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="with --report-only and no --out: rewrite the recorded RESULTS.md and plots",
    )
    return parser


def _choices(raw: str, valid: tuple[str, ...], flag: str) -> tuple[str, ...]:
    """The comma-separated names in `raw`; exit 2 naming the valid ones on a typo."""
    chosen = tuple(s.strip() for s in raw.split(",") if s.strip())
    unknown = [s for s in chosen if s not in valid]
    if unknown or not chosen:
        print(
            f"ember-xcs bench: {flag}: unknown {', '.join(unknown) or 'empty list'}; choose "
            f"from {', '.join(valid)}",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return chosen


def _latencies(raw: str) -> tuple[float, ...]:
    """`--latencies 50,5` in ms as seconds; exit 2 on anything but numbers >= 0."""
    try:
        values = tuple(float(x) / 1000 for x in raw.split(","))
    except ValueError:
        values = ()
    if not values or not all(0 <= v < math.inf for v in values):
        print(
            f"ember-xcs bench: --latencies {raw!r}: give milliseconds >= 0 separated by "
            "commas, e.g. --latencies 50,5",
            file=sys.stderr,
        )
        raise SystemExit(2)
    return values


def _settings(args: argparse.Namespace) -> _suite.Settings:
    settings = _suite.Settings.for_quick() if args.quick else _suite.Settings()
    if args.sections:
        settings.sections = _choices(args.sections, tuple(SECTIONS), "--sections")
    if args.scenarios:
        settings.scenarios = _choices(args.scenarios, SCENARIO_NAMES, "--scenarios")
    if args.latencies:
        settings.latencies = _latencies(args.latencies)
    if args.repeats:
        settings.repeats = max(1, args.repeats)
    return settings


def _out_dir(args: argparse.Namespace) -> Path:
    if args.out is not None:
        out = args.out
    elif args.quick:
        out = Path(tempfile.mkdtemp(prefix="ember-xcs-bench-quick-"))
    else:
        out = default_out_dir()
    out.mkdir(parents=True, exist_ok=True)
    return out


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    if args.report_only:
        return _report_only(args)
    if args.soak is not None:
        return _soak(args.soak)
    settings, out = _settings(args), _out_dir(args)
    print(f"ember-xcs bench: {'quick' if settings.quick else 'full'} run -> {out}", flush=True)
    recorded_stamp, recorded = load_rows(args.compare or out / "results.json")
    start = time.perf_counter()
    rows, notes = _run_sections(settings)
    annotate(rows)
    info = {**stamp(settings, time.perf_counter() - start, argv), "notes": notes}
    _regression(rows, recorded, recorded_stamp)
    rows, info = _merge(rows, recorded, recorded_stamp, settings, info, args)
    flat = _flat_notes(info)
    plots = [] if args.no_plots else write_plots(out, rows, flat)
    write_json(out / "results.json", rows, info)
    write_markdown(out / "RESULTS.md", rows, info, flat, plots)
    failed = [r for r in rows if not r.ok]
    for row in failed:
        print(f"FAILED: {row.key}: {row.note}")
    print(f"wrote {out / 'RESULTS.md'} ({len(rows)} rows) in {info['seconds']:.0f} s")
    return 1 if failed else 0


def _report_only(args: argparse.Namespace) -> int:
    source = args.out or default_out_dir()
    info, rows = load_rows(source / "results.json")
    if not rows:
        print(f"no rows in {source / 'results.json'}; run the suite first")
        return 1
    if args.out is not None or args.in_place:
        out = source
    else:  # never rewrite the recorded (tracked) files unless asked
        out = Path(tempfile.mkdtemp(prefix="ember-xcs-bench-report-"))
    notes = _flat_notes(info)
    plots = [] if args.no_plots else write_plots(out, rows, notes)
    write_markdown(out / "RESULTS.md", rows, info, notes, plots)
    print(f"wrote {out / 'RESULTS.md'} from {len(rows)} rows of {source / 'results.json'}")
    if out != source:
        print("(the recorded files are untouched; pass --in-place to rewrite them)")
    return 0


def _soak(minutes: float) -> int:
    if not 0 < minutes < math.inf:
        print(f"ember-xcs bench: --soak {minutes:g}: give minutes > 0", file=sys.stderr)
        raise SystemExit(2)
    from ._soak import run_soak

    report = run_soak(minutes)
    for line in report.lines():
        print(line)
    return 1 if report.errors or report.wrong_answers or report.thread_growth > 0 else 0


def _flat_notes(info: dict) -> list[str]:
    notes = info.get("notes") or {}
    return [n for section in notes.values() for n in section]


def _run_sections(settings: _suite.Settings) -> tuple[list[Row], dict[str, list[str]]]:
    """Rows of every chosen section, and the notes each section left, by section."""
    rows: list[Row] = []
    notes: dict[str, list[str]] = {}
    modules = {"numeric": _numeric, "http": _http, "diagnose": _diagnose, "corpus": _corpus}

    def log(line: str) -> None:
        print(line, flush=True)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # third-party baselines
            for name in settings.sections:
                start = time.perf_counter()
                rows += SECTIONS[name](settings, log)
                log(f"[{name}] done in {time.perf_counter() - start:.1f} s")
                if name in modules:
                    notes[name] = list(modules[name].NOTES)
    finally:
        from ._variants import close_shared

        close_shared()
    return rows, notes


def _merge(rows, recorded, recorded_stamp, settings, info, args):  # noqa: ANN001, ANN202
    """Keep recorded rows that this (partial) run did not re-measure."""
    partial = args.sections or args.scenarios
    same_mode = recorded_stamp.get("mode") == info["mode"]
    if not partial or not recorded or not same_mode or args.compare:
        return rows, info
    fresh = {r.key for r in rows}
    rerun = set() if args.scenarios else set(settings.sections)
    kept = [r for r in recorded if r.key not in fresh and r.section not in rerun]
    old_notes = recorded_stamp.get("notes")
    notes = {**(old_notes if isinstance(old_notes, dict) else {}), **info["notes"]}
    refreshed = f"{info['date']}: `{' '.join(['ember-xcs bench', *info['argv']])}`"
    merged = {**recorded_stamp, "notes": notes}
    merged["refreshed"] = [*recorded_stamp.get("refreshed", []), refreshed]
    return kept + rows, merged


def _regression(rows: list[Row], recorded: list[Row], recorded_stamp: dict) -> None:
    if not recorded:
        print("regression check: no recorded results.json to compare with")
        return
    compared, worse = compare(rows, recorded)
    when = recorded_stamp.get("date", "an earlier run")
    print(f"regression check vs {when}: {compared} rows compared, {len(worse)} worse by > 20 %")
    for line in worse:
        print(f"  WORSE {line}")
