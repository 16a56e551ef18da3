"""The public API is exactly what `docs/api.md` lists, and every name is documented.

`docs/api.md` is made of `## ` sections holding Markdown tables; the first cell of each
table row names one export in backticks. Sections document `ember_xcs` itself, except a
section whose heading names a subpackage in backticks (e.g. ``## `ember_xcs.models` ``),
whose table is checked against that subpackage's `__all__` instead.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from pathlib import Path

import pytest

import ember_xcs

API_DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_MODULE_HEADING = re.compile(r"`(ember_xcs(?:\.\w+)+)`")


def documented_names(text: str) -> dict[str, set[str]]:
    """Module name -> names in the first cell of the table rows of its sections."""
    documented: dict[str, set[str]] = {"ember_xcs": set()}
    module = "ember_xcs"
    for line in text.splitlines():
        if line.startswith("#"):
            match = _MODULE_HEADING.search(line) if line.startswith("## ") else None
            if line.startswith("## "):
                module = match.group(1) if match else "ember_xcs"
                documented.setdefault(module, set())
            continue
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        first_cell = line.strip("|").split("|")[0]
        documented[module].update(re.findall(r"`([A-Za-z_]\w*)`", first_cell))
    return documented


def public_exports(module: types.ModuleType) -> set[str]:
    """Names a user reaches as `module.name`: not underscored, not submodules."""
    if module is not ember_xcs and hasattr(module, "__all__"):
        return set(module.__all__)
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }


DOCUMENTED = documented_names(API_DOC.read_text())


def test_parser_reads_first_cells_and_module_sections():
    text = (
        "# API\n\n## Core\n\n| name | what |\n|---|---|\n| `Graph`, `XCSGraph` | a `DAG` |\n"
        "\n## `ember_xcs.models`\n\n| name | what |\n|---|---|\n| `Model` | protocol |\n"
    )
    assert documented_names(text) == {
        "ember_xcs": {"Graph", "XCSGraph"},
        "ember_xcs.models": {"Model"},
    }


def test_api_doc_lists_exactly_the_exports():
    exported = public_exports(ember_xcs)
    listed = DOCUMENTED["ember_xcs"]
    assert not exported - listed, (
        f"exported but missing from docs/api.md: {sorted(exported - listed)}"
    )
    assert not listed - exported, f"in docs/api.md but not exported: {sorted(listed - exported)}"


def test_subpackage_sections_list_exactly_its_exports():
    for module_name in sorted(set(DOCUMENTED) - {"ember_xcs"}):
        module = importlib.import_module(module_name)
        assert public_exports(module) == DOCUMENTED[module_name], module_name


EXPORTS = sorted(public_exports(ember_xcs))


@pytest.mark.parametrize("name", EXPORTS)
def test_every_export_has_a_docstring(name):
    value = getattr(ember_xcs, name)
    doc = value.__doc__ if inspect.isclass(value) else inspect.getdoc(value)
    assert doc and doc.strip(), f"ember_xcs.{name} has no docstring"


def test_exports_are_explicit_reexports():
    """`__init__` re-exports with `from .x import name as name` (STYLE.md), nothing else."""
    import ast

    tree = ast.parse(Path(ember_xcs.__file__).read_text())
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                assert alias.asname == alias.name, (
                    f"line {node.lineno}: write `import {alias.name} as {alias.name}`"
                )
