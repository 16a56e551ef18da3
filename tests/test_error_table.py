"""Every row of the table in `docs/errors.md` is a test: run its code, check the error.

A row is `| code | raises | message contains |`. The code runs with the names the page
lists (`g`, `f`, `x`, `mesh`, `deep`, `failing`, `closed_address`, ...); the exception
must be an instance of every class named in backticks in the second cell, and its
message must contain the backticked text of the third. A row whose code starts with
`ember-xcs bench` runs the bench command line and must exit with status 2, printing the
third cell on stderr.
"""

from __future__ import annotations

import builtins
import math
import re
import shlex
import socket
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import pytest

import ember_xcs as xcs
from ember_xcs import _errors, models
from ember_xcs.models import SimulatedModel

ERRORS_DOC = Path(__file__).resolve().parent.parent / "docs" / "errors.md"
_CELL_CODE = re.compile(r"`([^`]+)`")


def table_rows(text: str) -> list[tuple[str, list[str], str]]:
    """`(code, class names, message fragment)` for every row of the page's tables."""
    rows = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `") or len(cells) != 3:
            continue
        code = _CELL_CODE.findall(cells[0])[0]
        rows.append((code, _CELL_CODE.findall(cells[1]), _CELL_CODE.findall(cells[2])[0]))
    return rows


ROWS = table_rows(ERRORS_DOC.read_text())


def test_the_table_parser_reads_code_classes_and_message() -> None:
    text = "| code | raises | message |\n|---|---|---|\n| `f(1)` | `A`, `B` | `says x` |\n"
    assert table_rows(text) == [("f(1)", ["A", "B"], "says x")]


def test_the_table_covers_every_entry_point() -> None:
    assert len(ROWS) >= 90
    entries = "add_node add_edge connect remove_edge remove_node execute_graph ExecutionOptions"
    entries += " execution_options jit op vmap pmap DeviceMesh mesh_sharded bench"
    for entry in entries.split():
        assert any(entry in code for code, _, _ in ROWS), entry


def f(x: Any) -> Any:
    return x


def boom(x: Any) -> Any:
    raise RuntimeError("boom")


def namespace() -> dict[str, Any]:
    g = xcs.Graph()
    g.add_node(f, node_id="a")
    g.add_node(f, node_id="b")
    failing = xcs.Graph()
    failing.add_node(boom, node_id="boom")
    deep: list[Any] = []
    inner = deep
    for _ in range(5000):
        inner.append([])
        inner = inner[0]
    return {
        "xcs": xcs,
        "jax": jax,
        "jnp": jnp,
        "math": math,
        "f": f,
        "g": g,
        "failing": failing,
        "deep": deep,
        "x": jnp.ones(8),
        "mesh": xcs.DeviceMesh((2,), ("data",)),
        "SimulatedModel": SimulatedModel,
        "closed_address": closed_address(),
    }


def closed_address() -> str:
    """A loopback address nothing listens on: a port the OS just handed out, released."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"


def error_class(name: str) -> type[BaseException]:
    """The class a row names: public, internal to `_errors`, a model error, or a builtin."""
    for module in (xcs, _errors, models, builtins):
        if isinstance(getattr(module, name, None), type):
            return getattr(module, name)
    raise AssertionError(f"docs/errors.md names an unknown error class {name!r}")


@pytest.mark.parametrize(("code", "classes", "fragment"), ROWS, ids=[r[0] for r in ROWS])
def test_each_invalid_input_gets_the_documented_error(
    code: str, classes: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if code.startswith("ember-xcs bench"):
        from ember_xcs_bench._cli import main

        with pytest.raises(SystemExit) as exit_info:
            main(shlex.split(code)[2:])
        assert exit_info.value.code == 2
        assert fragment in capsys.readouterr().err
        return
    with pytest.raises(BaseException) as info:  # noqa: PT011 - the row names the class
        exec(code, namespace())  # noqa: S102 - the documented code, run as written
    for name in classes:
        assert isinstance(info.value, error_class(name)), (name, repr(info.value))
    assert fragment in str(info.value)
