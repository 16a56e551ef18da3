"""The error hierarchy and the input summaries every node failure carries."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs._errors import (
    AxisNameError,
    TransformTypeError,
    summarize_inputs,
    summarize_value,
    with_article,
)


def nested(depth: int) -> list[Any]:
    outer: list[Any] = []
    inner = outer
    for _ in range(depth):
        inner.append([])
        inner = inner[0]
    return outer


def test_transform_errors_are_the_builtins_jax_raises() -> None:
    assert issubclass(xcs.TransformError, ValueError)
    assert issubclass(TransformTypeError, TypeError) and issubclass(TransformTypeError, ValueError)
    assert issubclass(AxisNameError, NameError) and issubclass(AxisNameError, xcs.TransformError)
    assert issubclass(xcs.OptionsError, ValueError)


def test_a_node_failing_on_a_5000_deep_input_reports_its_own_error() -> None:
    def boom(x: Any) -> Any:
        raise RuntimeError("boom")

    g = xcs.Graph()
    g.add_node(boom, node_id="boom")
    with pytest.raises(xcs.NodeExecutionError) as info:
        xcs.execute_graph(g, {"x": nested(5000)})
    assert isinstance(info.value.__cause__, RuntimeError)
    assert str(info.value.__cause__) == "boom"
    assert info.value.inputs_summary == "(x=[[[[...]]]])"


def test_summaries_stay_short_for_deep_wide_and_unprintable_values() -> None:
    class Unprintable:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    assert summarize_value(nested(100_000)) == "[[[[...]]]]"
    assert len(summarize_value(list(range(10**6)))) <= 60
    assert "Unprintable" in summarize_value(Unprintable())
    assert summarize_value({"deep": nested(10_000)}) == "{'deep': [[[[...]]]]}"
    assert len(summarize_inputs((nested(10_000),) * 50, {"k": "v" * 10_000})) <= 240


def closed_port() -> int:
    """A port the OS just handed out and took back: nothing listens there."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_dask_address_fails_at_once_naming_the_address() -> None:
    pytest.importorskip("distributed")
    address = f"tcp://127.0.0.1:{closed_port()}"
    g = xcs.Graph()
    g.add_node(lambda: 1, node_id="a")
    options = xcs.ExecutionOptions(scheduler="dask", dask_client=address)
    with pytest.raises(xcs.ExecutionError) as info:
        xcs.execute_graph(g, options=options)
    # refused by the probe, not timed out after Dask's 30 s of retries
    assert str(info.value).startswith(
        f"dask_client={address!r}: cannot connect to a Dask scheduler there "
        "(ConnectionRefusedError:"
    )
    assert "start one (`dask scheduler`) or fix the address" in str(info.value)


@pytest.mark.parametrize(
    "phrase",
    [
        "an int",
        "an int32[3]",
        "an object",
        "an ellipsis",
        "an enumerate",
        "an Operator",
        "an LLMOperator",
        "an HTTPModel",
        "an OSError",
        "an UnboundLocalError",
        "a str",
        "a float32[2,3]",
        "a uint8[4]",
        "a UnicodeError",
        "a UUID",
        "a NoneType",
        "a list of 2 items",
        "a SimulatedModel",
    ],
)
def test_type_names_in_messages_take_the_article_they_are_said_with(phrase: str) -> None:
    assert with_article(phrase.split(" ", 1)[1]) == phrase
