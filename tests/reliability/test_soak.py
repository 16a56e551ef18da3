"""The soak: a jitted pipeline run back to back, watched for memory, thread and latency
drift (`ember_xcs_bench._soak`, also `ember-xcs bench --soak MINUTES`).

In CI it runs for three seconds; set `EMBER_XCS_SOAK_MINUTES=N` to run it for N minutes
(run pytest with `-s` to see the per-window figures).
"""

from __future__ import annotations

import os

from ember_xcs_bench._soak import run_soak

MINUTES = float(os.environ.get("EMBER_XCS_SOAK_MINUTES") or 0.05)
# a 3 s run measures compile-cache warm-up as much as drift; a long run is held tighter
RSS_GROWTH_LIMIT_MIB = 64 if MINUTES < 1 else 32


def test_a_jitted_pipeline_runs_for_minutes_without_errors_leaks_or_wrong_answers() -> None:
    report = run_soak(MINUTES, log=print)
    for line in report.lines():
        print(line)
    assert report.calls >= len(report.windows) >= 2
    assert report.errors == 0 and report.wrong_answers == 0
    assert report.thread_growth <= 0, f"threads grew: {report.lines()[2]}"
    assert max(w.threads for w in report.windows) <= report.threads_before
    assert report.rss_growth_mib < RSS_GROWTH_LIMIT_MIB, report.lines()[1]
