"""Every example runs, and prints what it says it prints.

Each `examples/*.py` declares its expected output near the top, one regular expression
per line, in comments:

    # expect: speedup: \\d+\\.\\dx
    # expect: ^join +\\|

Every pattern must match somewhere in the example's stdout (`re.search`, multiline). An
example with no `# expect:` line fails, so no example's output goes unchecked. Examples
run in a fresh interpreter with eight simulated CPU devices, as a user would run them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.rglob("*.py"))
HEADER_LINES = 40  # "near the top": expectations live in the first lines of the file
TIMEOUT_SECONDS = 240
_EXPECT = re.compile(r"^\s*#\s*expect:\s?(.*?)\s*$")


def expectations(source: str) -> list[str]:
    """The `# expect:` patterns in the first `HEADER_LINES` lines of `source`."""
    lines = source.splitlines()[:HEADER_LINES]
    return [m.group(1) for m in map(_EXPECT.match, lines) if m]


def run_example(path: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env.setdefault("JAX_PLATFORMS", "cpu")
    return subprocess.run(
        [sys.executable, str(path)],
        cwd=EXAMPLES_DIR.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )


def test_expectation_parser_reads_only_the_header():
    source = '"""Doc."""\n# expect: ^a \\d+$\n  #expect:b\nx = 1\n' + "\n" * 50 + "# expect: late\n"
    assert expectations(source) == ["^a \\d+$", "b"]


def test_there_are_examples():
    assert EXAMPLES, f"no examples in {EXAMPLES_DIR}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_prints_what_it_expects(path):
    patterns = expectations(path.read_text())
    assert patterns, f"{path.name} has no '# expect: <regex>' lines near the top"
    for pattern in patterns:
        re.compile(pattern)  # a typo in a pattern fails here, before the run
    proc = run_example(path)
    assert proc.returncode == 0, f"{path.name} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    missing = [p for p in patterns if not re.search(p, proc.stdout, re.MULTILINE)]
    assert not missing, f"{path.name}: no match for {missing} in stdout:\n{proc.stdout[-3000:]}"
