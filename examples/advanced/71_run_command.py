"""`ember-xcs run`: run a graph from a shell, as Airflow, Prefect or cron would.

Writes a small pipeline module to a temporary folder, then runs
`python -m ember_xcs run pipeline:<attribute>` on it the way a workflow tool does: inputs
as JSON, options as flags, one JSON report on stdout, and an exit status that says what
happened (0 ok, 2 bad input, 3 a node failed, 4 timeout).

Features: `ember-xcs run module:attribute` with a Graph and a jitted function, `@file`
inputs, `--scheduler`, `--partial`, `--timeout`, and the JSON report's `status`,
`result`, `failures`, `stats` and `timings`.

    python examples/advanced/71_run_command.py
"""

# expect: ^exit 0 ok +result=\{'answer': 'what is XLA\?: 3 sources'\} nodes_run=2$
# expect: ^exit 0 ok +result=\['xla: 1 sources', 'xla: 2 sources'\]
# expect: ^exit 3 failed +result=\{'retrieve': .*\} failures=\['audit'\]$
# expect: ^exit 4 timeout +error=ExecutionTimeoutError
# expect: ^exit 2 bad_input +error=.*did you mean 'question'

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import ember_xcs as xcs

PIPELINE = '''
import threading

import ember_xcs as xcs


@xcs.op
def retrieve(question: str) -> dict:
    return {"docs": [f"{question} doc {i}" for i in range(3)]}


@xcs.op
def answer(docs: list, question: str) -> str:
    return f"{question}: {len(docs)} sources"


@xcs.op
def audit(question: str) -> str:
    raise RuntimeError("audit service unavailable")


@xcs.op
def stuck(question: str) -> str:
    threading.Event().wait(10)  # a call that hangs
    return question


graph = xcs.Graph()
graph.add_node(retrieve)
graph.add_node(answer)
graph.connect("retrieve.docs", "answer.docs")

audited = xcs.Graph()
audited.add_node(retrieve)
audited.add_node(audit)

hanging = xcs.Graph()
hanging.add_node(stuck)
hanging.add_node(retrieve)


@xcs.jit
def ask(question: str) -> list:
    return [answer([question], question), answer([question, question], question)]
'''


def ember_run(folder: Path, *args: str) -> None:
    """Run the command as a workflow tool would and print one line about it."""
    # the subprocess imports the same ember_xcs as this example
    env = dict(os.environ, PYTHONPATH=str(Path(xcs.__file__).resolve().parents[1]))
    proc = subprocess.run(
        [sys.executable, "-m", "ember_xcs", "run", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    report = json.loads(proc.stdout)
    if "error" in report and "result" not in report:
        detail = f"error={report['error']['type']}: {report['error']['message'][:70]}"
    else:
        detail = f"result={report['result']}"
        if report.get("failures"):
            detail += f" failures={list(report['failures'])}"
        elif report["kind"] == "graph":
            detail += f" nodes_run={report['stats']['nodes_run']}"
    print(f"exit {proc.returncode} {report['status']:<9} {detail}")


with tempfile.TemporaryDirectory() as tmp:
    folder = Path(tmp)
    (folder / "pipeline.py").write_text(textwrap.dedent(PIPELINE))
    (folder / "question.json").write_text('{"question": "what is XLA?"}')
    ember_run(folder, "pipeline:graph", "@question.json", "--scheduler", "parallel")
    ember_run(folder, "pipeline:ask", '{"question": "xla"}')
    ember_run(folder, "pipeline:audited", '{"question": "q"}', "--partial")
    ember_run(folder, "pipeline:hanging", '{"question": "q"}', "--timeout", "0.2")
    ember_run(folder, "pipeline:graph", '{"questoin": "typo"}')
