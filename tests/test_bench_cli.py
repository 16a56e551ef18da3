"""`ember-xcs bench` refuses bad arguments before measuring, and `--report-only` leaves
the recorded results alone unless asked (`--in-place`) or given `--out`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ember_xcs_bench import _cli, _report
from ember_xcs_bench._cli import main
from ember_xcs_bench._rows import Row


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--scenarios", "typo"], "--scenarios: unknown typo; choose from single, chain-5"),
        (["--scenarios", "single,nope"], "--scenarios: unknown nope; choose from single"),
        (["--scenarios", ","], "--scenarios: unknown empty list; choose from single"),
        (["--sections", "nope"], "--sections: unknown nope; choose from llm, workers"),
        (["--latencies", "abc"], "--latencies 'abc': give milliseconds >= 0 separated by commas"),
        (["--latencies", "5,-1"], "--latencies '5,-1': give milliseconds >= 0"),
        (["--latencies", "nan"], "--latencies 'nan': give milliseconds >= 0"),
        (["--soak", "-1"], "--soak -1: give minutes > 0"),
    ],
)
def test_bad_arguments_exit_2_naming_the_valid_choices_before_running_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    ran: list[object] = []
    monkeypatch.setattr(_cli, "_run_sections", lambda settings: ran.append(settings))
    with pytest.raises(SystemExit) as info:
        main([*argv, "--quick"])
    assert info.value.code == 2
    assert message in capsys.readouterr().err
    assert ran == []


def test_every_scenario_name_the_suite_knows_is_accepted() -> None:
    args = _cli.build_parser().parse_args(["--scenarios", ",".join(_cli.SCENARIO_NAMES)])
    assert _cli._settings(args).scenarios == _cli.SCENARIO_NAMES


def _recorded(folder: Path) -> Path:
    source = Path(__file__).resolve().parent.parent / "benchmarks" / "results.json"
    folder.mkdir()
    (folder / "results.json").write_text(source.read_text())
    (folder / "RESULTS.md").write_text("recorded\n")
    return folder


def test_report_only_writes_a_temporary_folder_and_leaves_the_recorded_files(
    tmp_path: Path, monkeypatch, capsys: pytest.CaptureFixture[str]
) -> None:
    recorded = _recorded(tmp_path / "recorded")
    monkeypatch.setattr(_cli, "default_out_dir", lambda: recorded)
    before = {p.name: p.read_bytes() for p in recorded.iterdir()}
    assert main(["--report-only", "--no-plots"]) == 0
    assert {p.name: p.read_bytes() for p in recorded.iterdir()} == before
    out = capsys.readouterr().out
    written = Path(out.split("wrote ", 1)[1].split(" from ", 1)[0])
    assert written.parent != recorded and "| " in written.read_text()
    assert "pass --in-place to rewrite them" in out


def test_report_only_rewrites_the_recorded_files_when_asked(tmp_path: Path, monkeypatch) -> None:
    recorded = _recorded(tmp_path / "recorded")
    monkeypatch.setattr(_cli, "default_out_dir", lambda: recorded)
    assert main(["--report-only", "--no-plots", "--in-place"]) == 0
    assert (recorded / "RESULTS.md").read_text() != "recorded\n"
    other = _recorded(tmp_path / "other")
    assert main(["--report-only", "--no-plots", "--out", str(other)]) == 0
    assert (other / "RESULTS.md").read_text() != "recorded\n"
    assert json.loads((other / "results.json").read_text())  # the input is kept


def test_the_default_output_of_a_source_checkout_is_its_benchmarks_folder() -> None:
    assert _cli.default_out_dir() == Path(__file__).resolve().parent.parent / "benchmarks"


def test_a_rewrite_keeps_the_sections_recorded_by_hand_and_replaces_the_generated_ones(
    tmp_path: Path,
) -> None:
    folder = _recorded(tmp_path / "recorded")
    (folder / "RESULTS.md").write_text(
        "# stamp\n\n## Standard scenarios\n\nan old table\n\n"
        "## Before and after (issue 7)\n\nmeasured by hand: 1.23 ms -> 0.98 ms\n\n"
        "## Plots\n\nold plots\n"
    )
    assert main(["--report-only", "--no-plots", "--out", str(folder)]) == 0
    text = (folder / "RESULTS.md").read_text()
    assert "## Before and after (issue 7)\n\nmeasured by hand: 1.23 ms -> 0.98 ms\n" in text
    assert text.count("## Standard scenarios") == 1 and "an old table" not in text
    assert "old plots" not in text
    assert main(["--report-only", "--no-plots", "--out", str(folder)]) == 0  # kept once, again
    assert (folder / "RESULTS.md").read_text().count("## Before and after (issue 7)") == 1


def test_every_section_title_the_report_writes_is_known_as_generated(tmp_path: Path) -> None:
    folder = _recorded(tmp_path / "recorded")
    (folder / "RESULTS.md").unlink()
    assert main(["--report-only", "--no-plots", "--out", str(folder)]) == 0
    text = (folder / "RESULTS.md").read_text()
    titles = {line[3:] for line in text.splitlines() if line.startswith("## ")}
    assert titles and titles <= _report.GENERATED
    assert _report.recorded_by_hand(text) == []


def test_corpus_rows_render_one_line_per_program_with_plain_jit_and_critical_path(
    tmp_path: Path,
) -> None:
    folder = _recorded(tmp_path / "recorded")
    info, rows = _report.load_rows(folder / "results.json")
    base = dict(section="corpus", scenario="router", latency_ms=50.0, cp_s=0.1, runs=3)
    rows += [
        Row(variant="plain python", kind="plain", median_s=0.1005, **base),
        Row(variant="jit: auto", kind="ember", median_s=0.1009, ratio=1.009, **base),
    ]
    rows[-1].extra.update(strategy="dynamic", paired_ms=[0.3, 0.5, 0.4])
    _report.write_json(folder / "results.json", rows, info)
    assert main(["--report-only", "--no-plots", "--out", str(folder)]) == 0
    text = (folder / "RESULTS.md").read_text()
    assert f"## {_report.CORPUS_TITLE}" in text
    assert "| router | dynamic | 100.50 | 100.90 | 100.00 | 1.01 | +0.40 |" in text
