"""`ember-xcs bench --soak MINUTES`: a jitted pipeline run back to back, watched for drift.

The mixed demo pipeline (JAX retrieval on a device mesh, eight parallel simulated LLM
answers, a judge, a numeric confidence; see `ember_xcs._demo_pipeline`) runs under one
`xcs.jit` for the given minutes, one call after another, cycling through a fixed set of
questions (each call a cache hit after a two-call warm-up). Every window (a tenth of the run, at
least one call) it samples:

- resident memory (`/proc/self/statm`, else the peak from `resource`), in MiB;
- live Python threads (`threading.active_count()`);
- per-call latency (median and 99th percentile of the window).

The report compares the first window with the last: memory growth, thread growth and the
latency drift. The simulated models' call logs are cleared every window: they record
every prompt on purpose (tests count calls with them), which is growth of the test
double, not of ember_xcs. A wrong answer (any call whose answer differs from the plain
Python pipeline's for that question) or a raised error is counted and reported.

Off in CI; `tests/reliability/test_soak.py` runs it for a few seconds, or for
`EMBER_XCS_SOAK_MINUTES` minutes when that variable is set.
"""

from __future__ import annotations

import dataclasses
import os
import resource
import statistics
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["SoakReport", "SoakWindow", "run_soak"]

QUESTIONS = tuple(f"Why does compiled JAX code run fast? (variant {i})" for i in range(4))
NUM_DOCS = 1024
LATENCY_S = 0.001  # simulated LLM latency: small, so the run stresses ember_xcs itself


@dataclasses.dataclass
class SoakWindow:
    """One sampling window: what the process looked like at its end."""

    calls: int
    rss_mib: float
    threads: int
    p50_ms: float
    p99_ms: float


@dataclasses.dataclass
class SoakReport:
    """The whole run; `lines()` renders it for a terminal or RESULTS.md."""

    minutes: float
    calls: int
    errors: int
    wrong_answers: int
    windows: list[SoakWindow]
    threads_before: int

    @property
    def first(self) -> SoakWindow:
        return self.windows[0]

    @property
    def last(self) -> SoakWindow:
        return self.windows[-1]

    @property
    def thread_growth(self) -> int:
        return self.last.threads - self.first.threads

    @property
    def rss_growth_mib(self) -> float:
        return self.last.rss_mib - self.first.rss_mib

    @property
    def p50_drift(self) -> float:
        """Last window's median latency over the first window's."""
        return self.last.p50_ms / self.first.p50_ms if self.first.p50_ms else float("nan")

    def lines(self) -> list[str]:
        rss = [w.rss_mib for w in self.windows]
        return [
            f"soak: {self.minutes:g} min, {self.calls} jitted calls, {self.errors} errors, "
            f"{self.wrong_answers} wrong answers",
            f"memory (RSS): {self.first.rss_mib:.1f} MiB after the first window -> "
            f"{self.last.rss_mib:.1f} MiB at the end ({self.rss_growth_mib:+.1f} MiB; "
            f"peak {max(rss):.1f} MiB)",
            f"threads: {self.threads_before} after the warm-up, {self.first.threads} after the "
            f"first window, {self.last.threads} at the end, at most "
            f"{max(w.threads for w in self.windows)}",
            f"latency p50: {self.first.p50_ms:.2f} ms first window -> {self.last.p50_ms:.2f} ms "
            f"last window (x{self.p50_drift:.2f}); p99 {self.first.p99_ms:.2f} -> "
            f"{self.last.p99_ms:.2f} ms",
        ]


def rss_mib() -> float:
    """Resident memory of this process in MiB (peak RSS where /proc is missing)."""
    try:
        with open("/proc/self/statm") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_soak(minutes: float, log: Callable[[str], None] = print, windows: int = 10) -> SoakReport:
    """Run the jitted mixed pipeline for `minutes`; sample `windows` times (see module)."""
    import jax.numpy as jnp

    from ember_xcs import jit
    from ember_xcs._demo_pipeline import MixedPipeline, _corpus, _projection, ensure_devices

    devices = ensure_devices()
    pipeline = MixedPipeline(LATENCY_S, devices)
    args = (jnp.asarray(_projection()), jnp.asarray(_corpus(NUM_DOCS)))
    expected = {q: pipeline(q, *args)["answer"] for q in QUESTIONS}
    jitted = jit(pipeline)
    for question in QUESTIONS[:2]:  # warm-up: trace and compile before anything is measured
        jitted(question, *args)
    threads_before = threading.active_count()
    deadline = time.monotonic() + minutes * 60
    window_s = minutes * 60 / windows
    report = SoakReport(minutes, 0, 0, 0, [], threads_before)
    while not report.windows or time.monotonic() < deadline:
        report.windows.append(_window(jitted, args, expected, report, window_s))
        _forget_call_logs(pipeline)
        w = report.windows[-1]
        log(
            f"[soak] window {len(report.windows)}: {w.calls} calls, RSS {w.rss_mib:.1f} MiB, "
            f"{w.threads} threads, p50 {w.p50_ms:.2f} ms, p99 {w.p99_ms:.2f} ms"
        )
    return report


def _window(
    jitted: Any, args: tuple[Any, ...], expected: dict[str, str], report: SoakReport, seconds: float
) -> SoakWindow:
    latencies: list[float] = []
    end = time.monotonic() + seconds
    while not latencies or time.monotonic() < end:
        question = QUESTIONS[report.calls % len(QUESTIONS)]
        start = time.perf_counter()
        try:
            out = jitted(question, *args)
            float(out["confidence"])  # wait for the numeric result too
        except Exception:  # noqa: BLE001 - counted and reported, the soak goes on
            report.errors += 1
        else:
            report.wrong_answers += out["answer"] != expected[question]
        latencies.append((time.perf_counter() - start) * 1000)
        report.calls += 1
    cut = sorted(latencies)
    return SoakWindow(
        calls=len(latencies),
        rss_mib=rss_mib(),
        threads=threading.active_count(),
        p50_ms=statistics.median(cut),
        p99_ms=cut[min(len(cut) - 1, int(len(cut) * 0.99))],
    )


def _forget_call_logs(pipeline: Any) -> None:
    """Clear the simulated models' per-call logs (test-double growth, see module docs)."""
    models = {id(unit.model): unit.model for unit in pipeline.answers}
    models[id(pipeline.judge.model)] = pipeline.judge.model
    for model in models.values():
        model.reset_counters()
