"""The `ember-xcs` command, run the way users run it: as a subprocess.

`ember-xcs` is the console script pip installs beside the interpreter; `python -m
ember_xcs` is the same command. `bench` hands its arguments to `ember_xcs_bench/_entry.py`;
that hand-off is tested here, the suite itself by the benchmark tests.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ember_xcs import cli
from ember_xcs.cli import build_parser

TIMEOUT_SECONDS = 240


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return env


def _console_script() -> str:
    beside_python = Path(sys.executable).parent / "ember-xcs"
    found = str(beside_python) if beside_python.exists() else shutil.which("ember-xcs")
    if found is None:
        pytest.fail("the ember-xcs console script is not installed; run pip install -e .")
    return found


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), env=_env(), capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )


def test_demo_quick_runs_the_mixed_pipeline_plain_and_jitted_with_one_answer():
    proc = run(_console_script(), "demo", "--quick")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^plain Python\s+\d", out, re.MULTILINE), out
    assert re.search(r"^jit, sequential\s+\d", out, re.MULTILINE), out
    assert re.search(r"^jit, parallel\s+\d", out, re.MULTILINE), out
    assert re.search(r"\d+\.\d+x", out), f"no speedup figure in:\n{out}"
    assert "same answer in every run: True" in out, out


def test_demo_graph_runs_both_schedulers_and_reports_speedup():
    proc = run(_console_script(), "demo", "--graph", "--quick")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert re.search(r"^\s*sequential:", out, re.MULTILINE), out
    assert re.search(r"^\s*parallel:", out, re.MULTILINE), out
    assert re.search(r"^speedup: \d+\.\dx", out, re.MULTILINE), out


def test_python_dash_m_doctor_reports_versions_and_devices():
    proc = run(sys.executable, "-m", "ember_xcs", "doctor")
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^ember_xcs \S+ on Python 3\.\d+", proc.stdout, re.MULTILINE), proc.stdout
    assert re.search(r"^jax \S+: backend cpu, 8 device\(s\)", proc.stdout, re.MULTILINE)


def test_unknown_command_exits_with_usage():
    proc = run(sys.executable, "-m", "ember_xcs", "frobnicate")
    assert proc.returncode == 2
    assert "usage: ember-xcs" in proc.stderr


@pytest.mark.parametrize(
    "argv",
    [["bench"], ["bench", "--quick"], ["bench", "a", "--b"], ["bench", "--quick", "--out", "x"]],
)
def test_bench_command_passes_its_arguments_to_the_suite_verbatim(argv, monkeypatch):
    seen = []
    monkeypatch.setattr(cli, "_bench", lambda args: seen.append(args.bench_args) or 0)
    assert cli.main(argv) == 0
    assert seen == [argv[1:]]


def test_every_documented_command_is_in_the_parser():
    usage = build_parser().format_usage()
    for command in ("demo", "bench", "doctor"):
        assert command in usage


def test_bench_reaches_the_suite():
    proc = run(sys.executable, "-m", "ember_xcs", "bench", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "usage: ember-xcs bench" in proc.stdout
