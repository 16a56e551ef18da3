"""Imports point one way (DESIGN.md §6), and only JAX's public API is used.

Every `ember_xcs/**.py` is parsed with `ast`; no module is imported, so a broken module
cannot hide a bad arrow. Layers, lowest first:

    _errors, _options  ->  operators  ->  graph  ->  scheduling
        ->  {_jit, transforms}  ->  models  ->  public API (__init__, cli, __main__, _demo*)

A module may import its own layer and any lower one. `_jit` and `transforms` share a
level but are siblings: neither may import the other. Relative and absolute imports
count alike, and so do imports inside functions (a lazy import is still an arrow).
Imports under `if TYPE_CHECKING:` are exempt from the layer order, because they never
run and so cannot create an import cycle; they are still held to the JAX rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "ember_xcs"
PACKAGE_DIR = Path(__file__).resolve().parent.parent / PACKAGE

# layer name -> level; equal levels may import each other unless listed in SIBLINGS
LEVELS = {
    "core": 0,
    "operators": 1,
    "graph": 2,
    "scheduling": 3,
    "_jit": 4,
    "transforms": 4,
    "models": 5,
    "public": 6,
}
SIBLINGS = {frozenset({"_jit", "transforms"})}
CORE_MODULES = {"_errors", "_options"}
PUBLIC_MODULES = {"__init__", "cli", "__main__", "_run_command"}
PUBLIC_PREFIXES = ("_demo",)
FORBIDDEN_JAX = ("jax._src", "jax.experimental")


@dataclass(frozen=True)
class ImportRef:
    """One import statement's target, resolved to a dotted module name."""

    target: str
    line: int
    type_checking_only: bool


def layer_of(module: str) -> str | None:
    """The layer of a dotted `ember_xcs...` module name, or None when unclassified."""
    parts = module.split(".")
    if parts[0] != PACKAGE:
        return None
    if len(parts) == 1:
        return "public"  # the package itself is ember_xcs/__init__.py
    head = parts[1]
    if head in CORE_MODULES:
        return "core"
    if head in PUBLIC_MODULES or head.startswith(PUBLIC_PREFIXES):
        return "public"
    if head in LEVELS and head not in ("core", "public"):
        return head
    return None


def allowed(importer: str, imported: str) -> bool:
    """May a module in layer `importer` import one in layer `imported`?"""
    if importer == imported:
        return True
    if frozenset({importer, imported}) in SIBLINGS:
        return False
    return LEVELS[imported] <= LEVELS[importer]


def module_name(path: Path, root: Path = PACKAGE_DIR) -> str:
    relative = path.relative_to(root.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _resolve_relative(current: str, package: bool, level: int, module: str | None) -> str:
    base = current.split(".") if package else current.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def _is_type_checking_test(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_type_checking_test(node.test):
            for child in node.body:
                for inner in ast.walk(child):
                    if hasattr(inner, "lineno"):
                        lines.add(inner.lineno)
    return lines


def imports_of(
    source: str, current: str, package: bool, root: Path = PACKAGE_DIR
) -> list[ImportRef]:
    """Every import in `source`, resolved against module `current`.

    `from . import name` names a submodule when `name` is a file or folder of the
    package, and otherwise an attribute of the package (so it points at `__init__`).
    """
    tree = ast.parse(source)
    guarded = _type_checking_lines(tree)
    refs: list[ImportRef] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            refs += [ImportRef(a.name, node.lineno, node.lineno in guarded) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = _resolve_relative(current, package, node.level, node.module)
            else:
                base = node.module or ""
            for alias in node.names:
                target = f"{base}.{alias.name}"
                refs.append(
                    ImportRef(
                        target if _is_module(target, root) else base,
                        node.lineno,
                        node.lineno in guarded,
                    )
                )
    return refs


def _is_module(dotted: str, root: Path) -> bool:
    """True when `dotted` names a module of this package, or any non-ember_xcs module."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE:
        return True  # `from jax import experimental` must count as importing jax.experimental
    path = root.parent.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def attribute_chains(source: str) -> list[tuple[str, int]]:
    """Dotted names used in expressions, e.g. `jax.experimental.shard_map` (no import needed)."""
    chains = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            parts, inner = [node.attr], node.value
            while isinstance(inner, ast.Attribute):
                parts.append(inner.attr)
                inner = inner.value
            if isinstance(inner, ast.Name):
                chains.append((".".join([inner.id, *reversed(parts)]), node.lineno))
    return chains


def layering_violations(path: Path, root: Path = PACKAGE_DIR) -> list[str]:
    current = module_name(path, root)
    own = layer_of(current)
    if own is None:
        return [f"{current} is in no layer; place it in LEVELS in tests/test_layering.py"]
    problems = []
    for ref in imports_of(path.read_text(), current, is_package(path), root):
        other = layer_of(ref.target)
        if other is None or ref.type_checking_only:
            continue
        if not allowed(own, other):
            problems.append(
                f"{path.relative_to(root.parent)}:{ref.line}: {current} ({own}) imports "
                f"{ref.target} ({other}); imports must point {_order_text()}"
            )
    return problems


def private_reach_violations(path: Path, root: Path = PACKAGE_DIR) -> list[str]:
    """Imports of another subpackage's private module (`transforms` importing
    `operators._classify`): a subpackage's `__init__` is its interface to the others."""
    current = module_name(path, root)
    own = current.split(".")[1] if "." in current else ""
    problems = []
    for ref in imports_of(path.read_text(), current, is_package(path), root):
        parts = ref.target.split(".")
        if parts[0] != PACKAGE or len(parts) < 3 or not parts[2].startswith("_"):
            continue
        if parts[1] != own:
            problems.append(
                f"{path.relative_to(root.parent)}:{ref.line}: {current} imports "
                f"{ref.target}, a private module of {PACKAGE}.{parts[1]}; import it from "
                f"{PACKAGE}.{parts[1]} (export it there if other packages need it)"
            )
    return problems


def jax_violations(path: Path, root: Path = PACKAGE_DIR) -> list[str]:
    source = path.read_text()
    current = module_name(path, root)
    names = [(r.target, r.line) for r in imports_of(source, current, is_package(path), root)]
    names += attribute_chains(source)
    return [
        f"{path.relative_to(root.parent)}:{line}: uses {name}; use JAX's public API instead"
        for name, line in names
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN_JAX)
    ]


def _order_text() -> str:
    return (
        "_errors/_options -> operators -> graph -> scheduling -> _jit|transforms -> models "
        "-> public API (_jit and transforms never import each other)"
    )


SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


def _ids(paths: list[Path]) -> list[str]:
    return [str(p.relative_to(PACKAGE_DIR.parent)) for p in paths]


def test_package_has_modules_to_check():
    assert len(SOURCES) > 10


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_imports_point_down_the_layers(path):
    assert layering_violations(path) == []


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_packages_reach_each_other_only_through_their_init(path):
    assert private_reach_violations(path) == []


@pytest.mark.parametrize("path", SOURCES, ids=_ids(SOURCES))
def test_no_private_or_experimental_jax(path):
    assert jax_violations(path) == []


# --- the checker itself ----------------------------------------------------------------


@pytest.fixture
def fake_package(tmp_path):
    """A throwaway `ember_xcs` tree to show the checker catches what it should."""
    root = tmp_path / PACKAGE
    for folder in ("graph", "scheduling", "_jit", "transforms", "operators"):
        (root / folder).mkdir(parents=True)
        (root / folder / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "_errors.py").write_text("")

    def write(relative: str, source: str) -> Path:
        path = root / relative
        path.write_text(source)
        return path

    return root, write


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("graph/_bad.py", "from ..scheduling import run_plan\n"),
        ("graph/_bad.py", "import ember_xcs.scheduling\n"),
        ("graph/_bad.py", "def f():\n    from ember_xcs._jit import jit\n"),
        ("operators/_bad.py", "from .. import Graph\n"),  # the package's __init__ is public
        ("_jit/_bad.py", "from ..transforms import vmap\n"),
        ("transforms/_bad.py", "from ember_xcs._jit import jit\n"),
        ("_errors.py", "from .operators import op\n"),
    ],
)
def test_checker_rejects_backward_imports(fake_package, relative, source):
    root, write = fake_package
    assert layering_violations(write(relative, source), root)


@pytest.mark.parametrize(
    ("relative", "source"),
    [
        ("scheduling/_ok.py", "from ..graph import Graph\nfrom .. import _errors\n"),
        ("_jit/_ok.py", "from ember_xcs.scheduling import run_plan\nimport jax\n"),
        (
            "graph/_ok.py",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .._jit import X\n",
        ),
        ("graph/_ok.py", "from ._render import to_dot\n"),
    ],
)
def test_checker_accepts_forward_and_type_checking_imports(fake_package, relative, source):
    root, write = fake_package
    assert layering_violations(write(relative, source), root) == []


def test_checker_rejects_reaching_into_another_packages_private_module(fake_package):
    root, write = fake_package
    (root / "operators" / "_classify.py").write_text("")
    bad = write("transforms/_bad.py", "from ..operators._classify import guard_numeric\n")
    ok = write("operators/_ok.py", "from ._classify import guard_numeric\n")
    assert private_reach_violations(bad, root)
    assert private_reach_violations(ok, root) == []


def test_checker_rejects_unplaced_modules(fake_package):
    root, write = fake_package
    assert "in no layer" in layering_violations(write("_misc.py", ""), root)[0]


@pytest.mark.parametrize(
    "source",
    [
        "from jax._src import core\n",
        "import jax.experimental.shard_map\n",
        "from jax.experimental import mesh_utils\n",
        "from jax import experimental\n",
        "import jax\nf = jax.experimental.shard_map.shard_map\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from jax._src.core import Tracer\n",
    ],
)
def test_checker_rejects_private_jax(fake_package, source):
    root, write = fake_package
    assert jax_violations(write("transforms/_bad.py", source), root)


def test_checker_accepts_public_jax(fake_package):
    root, write = fake_package
    source = "import jax\nfrom jax.sharding import PartitionSpec\nx = jax.shard_map\n"
    assert jax_violations(write("transforms/_ok.py", source), root) == []
