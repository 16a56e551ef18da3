"""The documentation site builds, links resolve, and its code examples run.

- every page in the `mkdocs.yml` nav exists, and every page in `docs/` is in the nav;
- `mkdocs build --strict` succeeds (when mkdocs-material is installed: the `dev` and
  `docs` extras install it), which also fails on broken links and anchors;
- relative links in `README.md` point at files that exist;
- the ```python blocks of the guide pages and the README run, top to bottom, one
  fresh interpreter per page, so documented code cannot rot. A block preceded by a
  `<!-- norun -->` line is left out (for code that needs a cluster or a network).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
README = ROOT / "README.md"
RUNNABLE_PAGES = [
    README,
    DOCS / "index.md",
    DOCS / "getting-started.md",
    DOCS / "graphs.md",
    DOCS / "execution.md",
    DOCS / "architecture.md",
    DOCS / "sharp-bits.md",
]
_FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def nav_pages(text: str) -> list[str]:
    """The `.md` files named in the `nav:` section of an mkdocs.yml."""
    nav = text.split("\nnav:", 1)[1] if "\nnav:" in text else ""
    block = re.split(r"^\S", nav, maxsplit=1, flags=re.MULTILINE)[0]
    return re.findall(r":\s*([\w./-]+\.md)\s*$", block, re.MULTILINE)


def python_blocks(markdown: str) -> list[str]:
    """The ```python blocks of `markdown` not preceded by `<!-- norun -->`."""
    blocks = []
    for match in _FENCE.finditer(markdown):
        before = markdown[: match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        if before.strip() != "<!-- norun -->":
            blocks.append(match.group(1))
    return blocks


def test_nav_parser_reads_nested_sections():
    text = (
        "site_name: x\nnav:\n  - Home: index.md\n  - Guide:\n      - A: a.md\ntheme:\n  name: m\n"
    )
    assert nav_pages(text) == ["index.md", "a.md"]


def test_block_parser_skips_norun_blocks():
    text = "```python\na = 1\n```\n<!-- norun -->\n```python\nb = 2\n```\n```bash\nls\n```\n"
    assert python_blocks(text) == ["a = 1\n"]


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
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


@pytest.mark.parametrize("page", RUNNABLE_PAGES, ids=[p.name for p in RUNNABLE_PAGES])
def test_page_code_runs(page, tmp_path):
    blocks = python_blocks(page.read_text())
    assert blocks, f"{page.name} has no python blocks: drop it from RUNNABLE_PAGES or add one"
    script = tmp_path / f"{page.stem}.py"
    script.write_text("\n\n".join(blocks))
    env = dict(os.environ)
    env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=8"
    env.setdefault("JAX_PLATFORMS", "cpu")
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, f"code in {page.name} failed:\n{proc.stderr[-4000:]}"
