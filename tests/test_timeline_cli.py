"""`ember-xcs demo --timeline PATH` writes the parallel run's Chrome trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from test_timeline_trace import check_trace_event_format

from ember_xcs._demo import run_demo
from ember_xcs._demo_pipeline import run_mixed_demo

ROOT = Path(__file__).resolve().parent.parent


def test_graph_demo_writes_a_chrome_trace_of_its_parallel_run(tmp_path):
    path = tmp_path / "demo.json"
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
    )
    proc = subprocess.run(
        [sys.executable, "-m", "ember_xcs", "demo", "--graph", "--quick", "--timeline", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (
        f"timeline: 21 node attempts -> {path} (open it at https://ui.perfetto.dev" in proc.stdout
    )
    trace = json.loads(path.read_text())
    check_trace_event_format(trace)
    nodes = [e for e in trace["traceEvents"] if e.get("cat") == "node"]
    assert sorted(e["name"] for e in nodes) == sorted(["join", *(f"unit_{i}" for i in range(20))])


def test_mixed_demo_writes_the_jitted_parallel_run(tmp_path, capsys):
    path = tmp_path / "mixed.json"
    assert run_mixed_demo(quick=True, timeline_path=str(path)) == 0
    assert "-> " + str(path) in capsys.readouterr().out
    trace = json.loads(path.read_text())
    check_trace_event_format(trace)
    names = {e["args"]["operator"] for e in trace["traceEvents"] if e.get("cat") == "node"}
    assert {"answer", "judge"} <= names


def test_without_timeline_the_demo_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert run_demo(quick=True) == 0
    assert "timeline:" not in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []
