"""The corpus section's summary: which programs jit made slower, and by how much."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import ember_xcs as xcs
from ember_xcs.operators import current_call_handler
from ember_xcs_bench import _corpus
from ember_xcs_bench._goals import evaluate_goals
from ember_xcs_bench._rows import Row


def _row(name: str, kind: str, times: list[float]) -> Row:
    return Row(
        section="corpus", scenario=name, variant=kind, kind=kind,
        median_s=sorted(times)[len(times) // 2] / 1e3, cp_s=0.1, ratio=1.0,
    )  # fmt: skip


def _pair(name: str, plain_ms: list[float], jit_ms: list[float], kind: str = "ember") -> list[Row]:
    timed = _row(name, kind, jit_ms)
    timed.extra["paired_ms"] = [j - p for j, p in zip(jit_ms, plain_ms, strict=True)]
    return [_row(name, "plain", plain_ms), timed]


def _seam(name: str, plain_ms: list[float], seam_ms: list[float]) -> Row:
    return _pair(name, plain_ms, seam_ms, kind="seam")[1]


def test_the_summary_counts_slower_programs_and_says_which_are_beyond_noise() -> None:
    rows = (
        _pair("steady", [100.0] * 9, [100.6] * 9)  # slower in every pair
        + _pair("noisy", [100.0, 101.0] * 4 + [100.0], [100.9, 100.2] * 4 + [100.1])
        + _pair("faster", [200.0] * 9, [100.0] * 9)
    )
    _corpus.NOTES.clear()
    _corpus._summarise(rows, 0.05, lambda line: None)
    (note,) = _corpus.NOTES
    assert "2 of 3 slower under jit than plain (goal 0): steady +0.60 ms, noisy " in note
    assert note.endswith("slower in a sign test over the paired runs (p < 0.05): 1 (steady)")
    assert "faster" not in note


def test_the_summary_counts_the_programs_the_call_seam_alone_makes_slower() -> None:
    plain = [100.0] * 9
    rows = (
        _pair("steady", plain, [100.6] * 9)
        + [_seam("steady", plain, [100.1] * 9)]  # the seam: slower in every pair too
        + _pair("faster", [200.0] * 9, [100.0] * 9)
        + [_seam("faster", [200.0] * 9, [199.0] * 9)]
    )
    _corpus.NOTES.clear()
    _corpus._summarise(rows, 0.05, lambda line: None)
    (note,) = _corpus.NOTES
    assert "1 of 2 slower under jit than plain (goal 0): steady +0.60 ms" in note
    assert note.endswith("the least any jit that sees the calls pays): 1 of 2 slower than "
                         "plain, 1 beyond noise")  # fmt: skip
    for row in rows:
        row.latency_ms = 50.0
    goals = {g.name: g for g in evaluate_goals(rows, {})}
    slower = goals["jit corpus, L = 50 ms: programs slower under jit than plain"]
    assert slower.measured == (
        "1 of 2 (1 beyond noise: sign test, p < 0.05); through the call seam alone: 1 (1)"
    )


def test_the_call_seam_runs_the_plain_body_and_each_operator_call_once() -> None:
    calls = []  # (prompt, whether a call handler saw the call)
    leaf = xcs.op(lambda q: calls.append((q, current_call_handler() is not None)) or q.upper())

    def program(qs: list[str]) -> str:
        return " ".join(leaf(q) for q in qs)

    assert _corpus.through_seam(program)(["a", "b"]) == "A B"
    assert program(["a", "b"]) == "A B"
    assert calls == [("a", True), ("b", True), ("a", False), ("b", False)]


def test_a_quick_corpus_run_measures_every_program_of_every_family(tmp_path: Path) -> None:
    # as `ember-xcs bench` runs it: its own process, from another folder (what pytest puts
    # on `sys.path`, the corpus must not rely on)
    argv = ["--quick", "--sections", "corpus", "--out", str(tmp_path), "--no-plots"]
    command = f"import sys; from ember_xcs_bench._cli import main; sys.exit(main({argv!r}))"
    done = subprocess.run([sys.executable, "-c", command], cwd=tmp_path, capture_output=True)
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    sys.path.insert(0, str(_corpus.CORPUS))
    try:
        names = {
            program.name
            for path in _corpus.CORPUS.glob("test_corpus_*.py")
            for program in importlib.import_module(path.stem).PROGRAMS
        }
    finally:
        sys.path.remove(str(_corpus.CORPUS))
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert {r["scenario"] for r in rows if r["kind"] == "ember" and r["runs"]} == names
    assert {r["scenario"] for r in rows if r["kind"] == "seam" and r["runs"]} == names
    text = (tmp_path / "RESULTS.md").read_text()
    assert all(f"\n| {name} | " in text for name in names)


def test_the_goals_table_carries_the_corpus_goals_or_says_the_section_did_not_run() -> None:
    rows = _pair("steady", [100.0] * 9, [100.6] * 9) + _pair("faster", [200.0] * 9, [100.0] * 9)
    for row in rows:
        row.latency_ms = 50.0
    goals = {g.name: g for g in evaluate_goals(rows, {})}
    ratio = goals["jit corpus, L = 50 ms: median wall / CP"]
    assert (ratio.measured, ratio.status) == ("1.000 over 2 programs", "met")
    slower = goals["jit corpus, L = 50 ms: programs slower under jit than plain"]
    assert slower.measured == "1 of 2 (1 beyond noise: sign test, p < 0.05)"
    assert slower.status == "**missed**"
    (missing,) = [g for g in evaluate_goals([], {}) if g.name == "jit corpus"]
    assert missing.status.startswith("not measured: section corpus not run")
