"""`ember-xcs run module:attribute`, run as a user runs it: in a subprocess, on a module
written to a temporary folder, reading the JSON on stdout and the exit status.

Each subprocess imports JAX (seconds on a busy machine), so the bad-input cases, which
stop before anything runs, call the same `main()` in this process instead.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent

PIPELINE = """
import threading
from dataclasses import dataclass

import numpy as np

import ember_xcs as xcs


@xcs.op
def retrieve(question: str) -> dict:
    print("retrieving")  # must not reach stdout: the JSON lives there
    return {"docs": [question + " doc 1", question + " doc 2"]}


@xcs.op
def answer(docs: list, question: str) -> str:
    return f"{question}: {len(docs)} docs"


@xcs.op
def explode(question: str) -> str:
    raise ValueError("model refused " + question)


graph = xcs.Graph()
graph.add_node(retrieve)
graph.add_node(answer)
graph.connect("retrieve.docs", "answer.docs")

failing = xcs.Graph()
failing.add_node(retrieve)
failing.add_node(explode)

release = threading.Event()


@xcs.op
def stuck(question: str) -> str:
    release.wait(30)
    return question


slow = xcs.Graph()
slow.add_node(stuck, node_id="stuck")
slow.add_node(retrieve)


@dataclass
class Scores:
    best: str
    values: np.ndarray


def score(words, scale=1.0):
    values = np.arange(len(words)) * scale
    return Scores(best=max(words, key=len), values=values)


@xcs.jit
def ask_twice(question):
    return [answer([question], question), answer([question, question], question)]


class Upper(xcs.Operator):
    def forward(self, text):
        return text.upper()


upper = Upper()
not_callable = 42


def hang():
    release.wait(30)
"""


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    return tmp_path


def ember_run(
    workdir: Path, *args: str, stdin: str | None = None, **env_vars: str
) -> tuple[int, dict[str, Any]]:
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu", **env_vars)
    proc = subprocess.run(
        [sys.executable, "-m", "ember_xcs", "run", *args],
        cwd=workdir,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.stdout.count("\n") == 1, f"stdout is not one JSON line:\n{proc.stdout}{proc.stderr}"
    return proc.returncode, json.loads(proc.stdout)


@pytest.fixture
def run_here(workdir, monkeypatch, capsys):
    """`ember-xcs run ...` in this process, from `workdir`; returns (exit, JSON)."""
    from ember_xcs.cli import main

    monkeypatch.chdir(workdir)
    monkeypatch.setattr(sys, "path", list(sys.path))  # run adds the working directory
    yield lambda *args: (main(["run", *args]), json.loads(capsys.readouterr().out))
    for name in ("pipeline", "broken"):
        sys.modules.pop(name, None)


def test_graph_runs_with_json_inputs_and_reports_results_stats_and_timings(workdir):
    code, out = ember_run(
        workdir, "pipeline:graph", '{"question": "xla"}', EMBER_XCS_SCHEDULER="wave"
    )
    assert code == 0 and out["status"] == "ok" and out["kind"] == "graph"
    assert out["result"] == {"answer": "xla: 2 docs"}
    assert out["failures"] == {} and out["skipped"] == []
    assert out["stats"]["nodes_run"] == 2
    assert out["stats"]["scheduler"] == "wave"  # no flag: the environment's default
    assert [n["node_id"] for n in out["timings"]["nodes"]] == ["retrieve", "answer"]
    assert out["timings"]["total_seconds"] >= out["stats"]["wall_seconds"]


def test_inputs_from_a_file_and_from_stdin(workdir):
    (workdir / "inputs.json").write_text('{"question": "file"}')
    assert ember_run(workdir, "pipeline:graph", "@inputs.json")[1]["result"] == {
        "answer": "file: 2 docs"
    }
    code, out = ember_run(workdir, "pipeline:graph", "@-", stdin='{"question": "pipe"}')
    assert (code, out["result"]) == (0, {"answer": "pipe: 2 docs"})


def test_flags_become_execution_options(workdir):
    code, out = ember_run(
        workdir,
        "pipeline:graph",
        '{"question": "q"}',
        "--scheduler=parallel",
        "--max-workers=1",
        "--retries=2",
        "--graph-passes=all",
        "--outputs=retrieve",
    )
    assert code == 0
    assert out["stats"]["scheduler"] == "parallel" and out["stats"]["max_in_flight"] == 1
    assert out["stats"]["graph_passes"]["removed"] == ["answer"]
    assert out["result"] == {"retrieve": {"docs": ["q doc 1", "q doc 2"]}}


def test_a_file_path_target_is_imported(workdir, run_here):
    code, out = run_here(str(workdir / "pipeline.py") + ":graph", '{"question": "p"}')
    assert (code, out["result"]) == (0, {"answer": "p: 2 docs"})


def test_node_failure_exits_3_with_the_failure(workdir):
    code, out = ember_run(workdir, "pipeline:failing", '{"question": "q"}')
    assert code == 3 and out["status"] == "failed"
    assert out["error"]["node_id"] == "explode"
    assert out["error"]["cause"] == {"type": "ValueError", "message": "model refused q"}


def test_partial_results_keep_what_finished_and_still_exit_3(workdir):
    code, out = ember_run(workdir, "pipeline:failing", '{"question": "q"}', "--partial")
    assert code == 3
    assert out["result"] == {"retrieve": {"docs": ["q doc 1", "q doc 2"]}}
    assert out["failures"]["explode"]["type"] == "NodeExecutionError"


def test_graph_timeout_exits_4_naming_the_running_node(workdir):
    code, out = ember_run(
        workdir, "pipeline:slow", '{"question": "q"}', "--timeout=0.3", "--scheduler=parallel"
    )
    assert code == 4 and out["status"] == "timeout"
    assert out["error"]["type"] == "ExecutionTimeoutError" and "stuck" in out["error"]["message"]


def test_a_function_that_does_not_return_in_time_exits_4(workdir):
    code, out = ember_run(workdir, "pipeline:hang", "--timeout=0.2")
    assert (code, out["error"]["type"]) == (4, "RunTimeout")


def test_plain_function_takes_keywords_or_positionals_and_returns_json(workdir):
    code, out = ember_run(workdir, "pipeline:score", '{"words": ["a", "abc"], "scale": 2}')
    assert (code, out["kind"]) == (0, "function")
    assert out["result"] == {"best": "abc", "values": [0.0, 2.0]}
    assert ember_run(workdir, "pipeline:score", '[["xy", "z"]]')[1]["result"]["best"] == "xy"


def test_jitted_function_and_operator(workdir):
    code, out = ember_run(workdir, "pipeline:ask_twice", '{"question": "q"}')
    assert code == 0 and out["result"] == ["q: 1 docs", "q: 2 docs"]
    assert out["stats"]["nodes_run"] == 2 and "jit_strategy" in out
    code, out = ember_run(workdir, "pipeline:upper", '["shout"]')
    assert (code, out["kind"], out["result"]) == (0, "operator", "SHOUT")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pipeline"], "must be module:attribute"),
        (["missing_module:graph"], "no module named 'missing_module'"),
        (["pipeline:grpah"], "has no attribute 'grpah'"),
        (["pipeline:not_callable"], "is an int; run takes a Graph"),
        (["pipeline:Upper"], "is a class; point at an instance"),
        (["pipeline:graph", "{not json"], "not valid JSON"),
        (["pipeline:graph", "@nowhere.json"], "cannot read inputs from nowhere.json"),
        (["pipeline:graph", "[1]"], "a Graph takes a JSON object of inputs, got list"),
        (["pipeline:graph", '{"questoin": "q"}'], "did you mean 'question'"),
        (["pipeline:graph", "{}", "--timeout=-1"], "timeout_seconds must be a finite positive"),
        (["pipeline:graph", "{}", "--graph-passes=dce"], "did you mean 'eliminate_dead_nodes'"),
        (["pipeline:score", '{"wrods": []}'], "inputs do not fit score"),
        (["pipeline:score", '"abc"'], "a JSON object .* or array"),
        (["pipeline:score", "[]", "--outputs=a"], "apply to a Graph target only"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v)[:40],
)
def test_bad_input_exits_2_and_says_what_to_fix(run_here, args, message):
    code, out = run_here(*args)
    assert (code, out["status"]) == (2, "bad_input")
    assert re.search(message, out["error"]["message"]), out["error"]["message"]


def test_a_module_that_fails_on_import_is_bad_input(workdir, run_here):
    (workdir / "broken.py").write_text("raise RuntimeError('no config')\n")
    code, out = run_here("broken:graph")
    assert code == 2 and "RuntimeError: no config" in out["error"]["message"]


# --- the documented commands ------------------------------------------------------------

DOC = ROOT / "docs" / "command-line.md"
_FENCE = re.compile(r"^```(\w+)[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def doc_blocks(language: str) -> list[str]:
    return [body for lang, body in _FENCE.findall(DOC.read_text()) if lang == language]


def test_documented_commands_print_what_the_page_shows(tmp_path):
    (tmp_path / "pipeline.py").write_text(doc_blocks("python")[0])
    (tmp_path / "question.json").write_text('{"question": "what is XLA?"}')
    lines = [line for block in doc_blocks("console") for line in block.splitlines()]
    commands = [(i, line[2:]) for i, line in enumerate(lines) if line.startswith("$ ember-xcs")]
    assert len(commands) == 3
    for i, command in commands:
        shown = lines[i + 1]
        code, report = ember_run(tmp_path, *shlex.split(command)[2:])  # after "ember-xcs run"
        assert report["status"] == re.search(r'"status": "(\w+)"', shown).group(1), command
        assert code == {"ok": 0, "failed": 3}[report["status"]]
        result = re.search(r'"result": (.*?), (?:"failures"|"stats"|\.\.\.)', shown).group(1)
        assert report["result"] == json.loads(result), command


def test_documented_orchestrator_snippets_are_valid_python():
    import ast

    for block in doc_blocks("python"):
        ast.parse(block)
