"""The public API is exactly what the API reference renders, and every name is documented.

The reference is generated from docstrings by mkdocstrings: each page in
`docs/reference/` holds `::: ember_xcs.Name` lines (one per export, rendered with its
signature, parameters, returns and raises) and `::: ember_xcs.models.Name` lines for the
`ember_xcs.models` subpackage, whose `__all__` they are checked against.
"""

from __future__ import annotations

import importlib
import inspect
import re
import types
from pathlib import Path

import pytest

import ember_xcs

REFERENCE = Path(__file__).resolve().parent.parent / "docs" / "reference"
_DIRECTIVE = re.compile(r"^::: (ember_xcs(?:\.[a-z]\w*)*)\.(\w+)\s*$", re.MULTILINE)


def documented_names(text: str) -> dict[str, set[str]]:
    """Module name -> names rendered by the `::: module.Name` directives in `text`."""
    documented: dict[str, set[str]] = {"ember_xcs": set()}
    for module, name in _DIRECTIVE.findall(text):
        documented.setdefault(module, set()).add(name)
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


DOCUMENTED = documented_names(
    "\n".join(page.read_text() for page in sorted(REFERENCE.glob("*.md")))
)


def test_parser_reads_directives_per_module():
    text = (
        "# Graph\n\n::: ember_xcs.Graph\n\n::: ember_xcs.XCSGraph\n    options:\n"
        "      members: false\n\n`::: ember_xcs.NotADirective`\n::: ember_xcs.models.Model\n"
    )
    assert documented_names(text) == {
        "ember_xcs": {"Graph", "XCSGraph"},
        "ember_xcs.models": {"Model"},
    }


def test_reference_lists_exactly_the_exports():
    exported = public_exports(ember_xcs)
    listed = DOCUMENTED["ember_xcs"]
    assert not exported - listed, (
        f"exported but missing from docs/reference/: {sorted(exported - listed)}"
    )
    assert not listed - exported, (
        f"in docs/reference/ but not exported: {sorted(listed - exported)}"
    )


def test_reference_lists_exactly_the_models_exports():
    assert "ember_xcs.models" in DOCUMENTED, "docs/reference/ has no ember_xcs.models page"
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


def test_models_exports_the_root_of_its_error_hierarchy():
    from ember_xcs import models
    from ember_xcs.models import ModelError

    assert ModelError is ember_xcs.ModelError
    for name in models.__all__:
        value = getattr(models, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, ModelError), name
