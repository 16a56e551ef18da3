"""Every example runs, and prints what it says it prints.

Each `examples/<basic|advanced|models>/NN_name.py` declares its expected output near the top, one regular expression
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

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES_DIR = ROOT / "examples"
EXAMPLES_PAGE = ROOT / "docs" / "examples.md"
SECTIONS = ("basic", "advanced", "models")
_NAME = re.compile(r"^\d\d_[a-z0-9_]+\.py$")
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
    assert len(EXAMPLES) >= 20, f"{len(EXAMPLES)} examples in {EXAMPLES_DIR}; keep at least 20"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_is_numbered_in_a_section_and_says_how_to_run(path):
    relative = path.relative_to(EXAMPLES_DIR)
    assert relative.parts[0] in SECTIONS and _NAME.match(path.name), (
        f"{relative}: put examples in examples/<{'|'.join(SECTIONS)}>/NN_name.py"
    )
    source = path.read_text()
    assert source.startswith('"""'), f"{relative}: open with a docstring (purpose, features, run)"
    assert f"python examples/{relative.as_posix()}" in source.split('"""')[1], (
        f"{relative}: the docstring should say how to run it: python examples/{relative.as_posix()}"
    )


def test_examples_page_links_every_example():
    page = EXAMPLES_PAGE.read_text()
    listed = set(re.findall(r'--8<-- "examples/([\w/]+\.py)"', page))
    present = {p.relative_to(EXAMPLES_DIR).as_posix() for p in EXAMPLES}
    assert listed == present, (
        f"docs/examples.md is missing {sorted(present - listed)} and lists gone {sorted(listed - present)}"
    )
    for path in EXAMPLES:
        assert f"(#{path.stem})" in page, f"the table in docs/examples.md does not link {path.name}"


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
