"""The benchmark suite's smoke run: every scenario once, small sizes, answers checked.

Timing is never asserted here (speed claims come from `benchmarks/RESULTS.md`); what is
checked is that every section runs, every contender that can run here gives the program's
own answers, and the run writes its report into the folder it was given, leaving the
recorded `benchmarks/RESULTS.md` alone.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ember_xcs_bench._entry import run_bench

RECORDED = Path(__file__).resolve().parent.parent / "benchmarks" / "RESULTS.md"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("bench")
    before = RECORDED.read_bytes() if RECORDED.exists() else None
    code = run_bench(["--quick", "--out", str(out), "--compare", str(out / "none.json")])
    after = RECORDED.read_bytes() if RECORDED.exists() else None
    assert before == after, "a quick run must never touch benchmarks/RESULTS.md"
    return code, out


def _rows(out: Path) -> list[dict]:
    return json.loads((out / "results.json").read_text())["rows"]


def test_quick_run_succeeds_and_writes_its_report(quick_run):
    code, out = quick_run
    assert code == 0
    text = (out / "RESULTS.md").read_text()
    assert text.startswith("# ember_xcs benchmark results")
    assert "## Goals" in text


def test_quick_run_covers_every_section_and_scenario(quick_run):
    from ember_xcs_bench._scenarios import SCENARIOS

    rows = _rows(quick_run[1])
    sections = {r["section"] for r in rows}
    assert sections == {"llm", "workers", "overhead", "scale", "numeric", "http"}  # + notes
    measured = {r["scenario"] for r in rows if r["section"] == "llm" and r["runs"] > 0}
    assert measured == {s.name for s in SCENARIOS} | {"ensemble-depth2-async"}


def test_every_measured_row_gave_the_programs_answers(quick_run):
    rows = _rows(quick_run[1])
    bad = [
        f"{r['section']}/{r['scenario']}/{r['variant']}: {r['note']}" for r in rows if not r["ok"]
    ]
    assert not bad, bad


def test_baselines_and_plain_python_run_beside_ember(quick_run):
    rows = [r for r in _rows(quick_run[1]) if r["section"] == "llm" and r["runs"] > 0]
    variants = {r["variant"] for r in rows}
    assert {
        "plain python",
        "graph: parallel",
        "graph: sequential",
        "threadpool",
        "asyncio",
    } <= variants
