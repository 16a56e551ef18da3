"""The documentation site builds, links resolve, and every code block in it runs.

- every page in the `mkdocs.yml` nav exists, and every page in `docs/` is in the nav;
- `mkdocs build --strict` succeeds (when mkdocs-material is installed: the `dev` and
  `docs` extras install it), which also fails on broken links and anchors;
- relative links in `README.md` point at files that exist;
- every ```python block of every page in `docs/` and of the README runs, top to bottom,
  one fresh interpreter per page, so documented code cannot rot. Markers, written as
  HTML comments on the line(s) just before a block so the site does not show them:
    - `<!-- prelude ... -->` holds hidden setup code run just before the block;
    - `<!-- norun: reason -->` leaves the block out; the reason must also be said in
      the page's text (the test checks that the page says "does not run" near it);
- a `--8<-- "examples/x.py:name"` line inside a block (pymdownx.snippets) stands for the
  lines between `# --8<-- [start:name]` and `# --8<-- [end:name]` of that file, so a
  tutorial shows its example script's code and the runner runs it as shown;
- a ```text block right after a python block, marked `<!-- output -->`, is the output
  the block prints: the test compares them, with `...` in the shown text standing for
  any text (as in doctest);
- the ```python blocks in the docstrings of the public names from `graph/`,
  `operators/`, `transforms/`, `_jit/`, `scheduling/`, `_errors.py` and `_options.py`
  (rendered by the API reference) run too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
_PRELUDE = re.compile(r"<!--\s*prelude\s*\n(.*?)-->\s*\Z", re.DOTALL)
_NORUN = re.compile(r"<!--\s*norun:\s*(.+?)\s*-->\s*\Z", re.DOTALL)
_OUTPUT_MARK = re.compile(r"\A\s*<!--\s*output\s*-->\s*\Z")
_SNIPPET = re.compile(r'^--8<-- "([^":]+)(?::(\w+))?"\s*$', re.MULTILINE)
_BLOCK_END = "\x1e-- end of block --"


@dataclass
class Block:
    """One ```python block: its code, hidden prelude, expected output, page line."""

    code: str
    line: int
    prelude: str = ""
    norun: str | None = None
    output: str | None = None


def python_blocks(markdown: str) -> list[Block]:
    """The ```python blocks of `markdown` with their markers (see the module docstring)."""
    fences = list(_FENCE.finditer(markdown))
    blocks = []
    for i, match in enumerate(fences):
        if match.group(1) != "python":
            continue
        gap = markdown[fences[i - 1].end() if i else 0 : match.start()]
        prelude = _PRELUDE.search(gap)
        norun = _NORUN.search(gap)
        block = Block(
            code=expand_snippets(match.group(2)),
            line=markdown.count("\n", 0, match.start()) + 2,
            prelude=prelude.group(1) if prelude else "",
            norun=norun.group(1) if norun else None,
        )
        after = fences[i + 1] if i + 1 < len(fences) else None
        between = markdown[match.end() : after.start()] if after else ""
        if after is not None and after.group(1) == "text" and _OUTPUT_MARK.match(between):
            block.output = after.group(2)
        blocks.append(block)
    return blocks


def expand_snippets(code: str) -> str:
    """`code` with each `--8<-- "path:section"` line replaced by that file section."""

    def section(match: re.Match[str]) -> str:
        text = (ROOT / match.group(1)).read_text()
        if match.group(2) is None:
            return text
        start, end = f"# --8<-- [start:{match.group(2)}]\n", f"# --8<-- [end:{match.group(2)}]"
        assert start in text, f"{match.group(1)} has no section {match.group(2)!r}"
        return text.split(start, 1)[1].split(end, 1)[0]

    return _SNIPPET.sub(section, code)


def output_matches(shown: str, printed: str) -> bool:
    """`printed` is `shown`, up to trailing spaces, with `...` matching any text."""

    def tidy(text: str) -> str:
        return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())

    pattern = ".*?".join(re.escape(part) for part in tidy(shown).split("..."))
    return re.fullmatch(pattern, tidy(printed), re.DOTALL) is not None


def page_script(blocks: list[Block]) -> str:
    """One script running `blocks` in order, printing a separator after each."""
    parts = []
    for block in blocks:
        parts.append(f"# --- block at line {block.line} ---\n{block.prelude}{block.code}")
        parts.append(f"print({_BLOCK_END!r}, flush=True)\n")
    return "\n".join(parts)


def nav_pages(text: str) -> list[str]:
    """The `.md` files named in the `nav:` section of an mkdocs.yml."""
    nav = text.split("\nnav:", 1)[1] if "\nnav:" in text else ""
    block = re.split(r"^\S", nav, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r":\s*([\w./-]+\.md)\s*$", block, re.MULTILINE)


def test_nav_parser_reads_nested_sections():
    text = (
        "site_name: x\nnav:\n  - Home: index.md\n  - Guide:\n      - A: a.md\ntheme:\n  name: m\n"
    )
    assert nav_pages(text) == ["index.md", "a.md"]


def test_block_parser_reads_preludes_norun_and_outputs():
    text = (
        "```python\na = 1\n```\n<!-- norun: needs a cluster -->\n```python\nb = 2\n```\n"
        "<!-- prelude\nx = 3\n-->\n```python\nprint(x)\n```\n<!-- output -->\n```text\n3\n```\n"
        "```bash\nls\n```\n"
    )
    first, second, third = python_blocks(text)
    assert (first.code, first.prelude, first.norun, first.output) == ("a = 1\n", "", None, None)
    assert (second.code, second.norun) == ("b = 2\n", "needs a cluster")
    assert (third.prelude, third.code, third.output) == ("x = 3\n", "print(x)\n", "3\n")
    assert third.line == 12  # the first line of code, as tracebacks count it


def test_snippet_lines_expand_to_file_sections():
    code = '--8<-- "examples/basic/01_hello_graph.py:graph"\n'
    expanded = expand_snippets(code)
    assert expanded.startswith("graph = xcs.Graph()") and "8<--" not in expanded


def test_output_comparison_allows_ellipsis_and_trailing_space():
    assert output_matches("took ... s\nok", "took 0.12 s  \nok\n")
    assert not output_matches("took ... s\nok", "took 0.12 s\nfailed")
    assert not output_matches("3", "33")


NAV = nav_pages(MKDOCS_YML.read_text())


def test_nav_covers_the_guide():
    for page in ("index.md", "graphs.md", "execution.md", "jit.md", "transforms.md", "models.md"):
        assert page in NAV


@pytest.mark.parametrize("page", NAV)
def test_nav_page_exists(page):
    assert (DOCS / page).is_file(), f"mkdocs.yml lists docs/{page}, which does not exist"


def test_every_docs_page_is_in_the_nav():
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert pages - set(NAV) == set(), "add these pages to the nav in mkdocs.yml"


def test_readme_links_resolve():
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link and not link.startswith("mailto:")]
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_mkdocs_build_is_strict_clean(tmp_path):
    # mkdocs-material is in the dev extra, so a missing install fails here rather than skipping
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")  # mkdocs-material's banner, not ours
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # griffe reads jax for PartitionSpec: ~25 s of CPU, minutes on a loaded machine
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


def run_script(script: Path) -> subprocess.CompletedProcess[str]:
    """Run `script` as a reader would: a fresh interpreter, 8 simulated CPU devices."""
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8")
    env.setdefault("JAX_PLATFORMS", "cpu")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=script.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
RUNNABLE_PAGES = [
    page for page in [README, *sorted(DOCS.rglob("*.md"))] if python_blocks(page.read_text())
]


def _page_id(page: Path) -> str:
    return str(page.relative_to(DOCS)) if page.is_relative_to(DOCS) else page.name


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=[_page_id(p) for p in RUNNABLE_PAGES])
def test_page_code_runs_and_prints_what_it_shows(page, tmp_path):
    text = page.read_text()
    blocks = python_blocks(text)
    for block in blocks:
        if block.norun is not None:
            before = _HTML_COMMENT.sub("", text[: text.find(block.code)])[-800:]
            assert "does not run" in before, (
                f"{_page_id(page)}:{block.line}: say in the page why this block does not run"
            )
    runnable = [b for b in blocks if b.norun is None]
    script = tmp_path / f"{page.stem}.py"
    script.write_text(page_script(runnable))
    proc = run_script(script)
    outputs = proc.stdout.split(_BLOCK_END + "\n")
    failed_at = runnable[len(outputs) - 1].line if len(outputs) <= len(runnable) else None
    assert proc.returncode == 0, (
        f"code in {_page_id(page)} failed (block at line {failed_at}):\n{proc.stderr[-4000:]}"
    )
    for block, printed in zip(runnable, outputs, strict=False):
        if block.output is not None:
            assert output_matches(block.output, printed), (
                f"{_page_id(page)}:{block.line}: the block printed\n{printed}\n"
                f"but the page shows\n{block.output}"
            )


# --- examples in docstrings ---------------------------------------------------------------

# The areas whose docstring examples are complete programs; each runs after this prelude.
DOCSTRING_AREAS = (
    "ember_xcs.operators",
    "ember_xcs.graph",
    "ember_xcs.transforms",
    "ember_xcs._errors",
    "ember_xcs._jit",
    "ember_xcs.scheduling",
    "ember_xcs._options",
)
DOCSTRING_PRELUDE = "import jax\nimport jax.numpy as jnp\n\nimport ember_xcs as xcs\n"
_DOC_FENCE = re.compile(r"^\s*```python\n(.*?)^\s*```", re.MULTILINE | re.DOTALL)


def docstring_examples() -> dict[str, list[str]]:
    """`name` or `name.method` -> the ```python blocks in its docstring, dedented."""
    import inspect
    import textwrap

    import ember_xcs

    found: dict[str, list[str]] = {}
    seen: set[int] = set()  # an alias (XCSGraph) shares its examples with Graph
    for name in sorted(n for n in vars(ember_xcs) if not n.startswith("_")):
        obj = getattr(ember_xcs, name)
        if not getattr(obj, "__module__", "").startswith(DOCSTRING_AREAS) or id(obj) in seen:
            continue
        seen.add(id(obj))
        members = vars(obj).items() if inspect.isclass(obj) else ()
        for label, value in [(name, obj)] + [(f"{name}.{m}", v) for m, v in members]:
            doc = inspect.getdoc(value) if not label.split(".")[-1].startswith("_") else None
            blocks = [textwrap.dedent(b) for b in _DOC_FENCE.findall(doc or "")]
            if blocks:
                found[label] = blocks
    return found


DOCSTRING_EXAMPLES = docstring_examples()


def test_public_names_of_the_core_areas_show_an_example():
    for name in (
        "Operator",
        "op",
        "Graph",
        "vmap",
        "pmap",
        "mesh_sharded",
        "DeviceMesh",
        "XCSError",
    ):
        assert name in DOCSTRING_EXAMPLES, f"add a runnable !!! example to ember_xcs.{name}"


def test_docstring_examples_run(tmp_path):
    parts = [DOCSTRING_PRELUDE]
    for label, blocks in DOCSTRING_EXAMPLES.items():
        for block in blocks:
            source = f"compile({block!r}, {f'<docstring of {label}>'!r}, 'exec')"
            parts.append(f"exec({source}, {{'xcs': xcs, 'jax': jax, 'jnp': jnp}})")
    script = tmp_path / "docstrings.py"
    script.write_text("\n".join(parts) + "\n")
    proc = run_script(script)
    assert proc.returncode == 0, f"a docstring example failed:\n{proc.stderr[-4000:]}"
