"""The one exception hierarchy of ember_xcs.

Every error the library raises on purpose is an `XCSError`. Messages say what happened in
the user's own names (node ids, operator names, parameter names) and what to do about it.
Errors raised while running a user's operator are chained (`raise ... from exc`) so the
original traceback is never lost.

```
XCSError
├── OptionsError            bad or unknown execution option
├── GraphError              building or validating a Graph
│   ├── DuplicateNodeError
│   ├── UnknownNodeError
│   ├── CycleError
│   ├── FieldMappingError
│   └── MissingInputError
├── ExecutionError          running a graph or plan; names the node
│   ├── NodeExecutionError  an operator raised
│   └── ExecutionTimeoutError
├── TraceError              jit tracing could not continue
├── TransformError          vmap / pmap / mesh_sharded misuse (also a ValueError)
│   ├── TransformTypeError  an argument of the wrong type (also a TypeError)
│   └── AxisNameError       a collective names an axis no transform binds (a NameError)
└── ModelError              an LLM backend failed
```

Where JAX raises a builtin for the same mistake, ours is also that builtin, so code
written against `jax.vmap` (`except ValueError`, `except TypeError`) catches ours too.
"""

from __future__ import annotations

import reprlib
import types
from collections.abc import Mapping, Sequence
from typing import Any


class XCSError(Exception):
    """Base class of every error ember_xcs raises on purpose.

    Catch it to handle anything ember_xcs raises; errors raised by your own operators
    reach you chained to one of its subclasses (`error.__cause__`).

    !!! example
        ```python
        try:
            xcs.ExecutionOptions(max_worker=4)
        except xcs.XCSError as error:
            assert isinstance(error, xcs.OptionsError)
            assert "did you mean 'max_workers'" in str(error)
        ```
    """


class OptionsError(XCSError, ValueError):
    """An execution option is unknown or has an invalid value."""


class GraphError(XCSError):
    """A graph is malformed: bad node ids, edges, mappings or cycles."""


class DuplicateNodeError(GraphError):
    """A node id is used twice in one graph."""


class UnknownNodeError(GraphError, KeyError):
    """An edge or query names a node the graph does not have."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class CycleError(GraphError):
    """The graph has a cycle, so there is no order to run it in.

    `cycle` lists the node ids around the cycle; the message prints it as
    `a -> b -> a`. `add_edge` raises it at once for an edge that would close a cycle,
    and leaves the graph unchanged.

    !!! example
        ```python
        g = xcs.Graph()
        for name in ("a", "b"):
            g.add_node(lambda x: x, node_id=name)
        g.add_edge("a", "b")
        try:
            g.add_edge("b", "a")
        except xcs.CycleError as error:
            assert error.cycle == ["a", "b"] and "a -> b -> a" in str(error)
        assert len(g.edges) == 1  # the graph is unchanged
        ```
    """

    def __init__(self, cycle: Sequence[str], *, closing: tuple[str, str] | None = None):
        self.cycle = list(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else "?"
        if closing is None:
            super().__init__(f"graph has a cycle: {path}; remove one edge or merge the nodes")
        else:
            src, dst = closing
            super().__init__(
                f"edge {src} -> {dst} would close a cycle: {path}; the graph is unchanged. "
                "Data flows one way: merge the nodes, or remove an edge of the cycle first "
                "(Graph.remove_edge)"
            )


class FieldMappingError(GraphError):
    """A field mapping names a parameter or output field that does not exist."""


class MissingInputError(GraphError):
    """A node has required parameters that no edge or input supplies."""


class ExecutionError(XCSError):
    """Running a graph failed. Carries the node, operator and an input summary.

    **Attributes:**

    - `node_id`: the id of the node that failed (or `None` for graph-level errors).
    - `operator_name`: a readable name of the node's operator.
    - `inputs_summary`: a short, truncated description of the node's inputs.
    - `path`: ids of the nodes that ran before this one and fed it, directly or not, in
      the order the run added them (`[]` for a root; `None` when not known, as for a
      graph-level error). Up to six are also shown in the message (`after: a -> b`).
    """

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        operator_name: str | None = None,
        inputs_summary: str | None = None,
    ):
        super().__init__(message)
        self.node_id = node_id
        self.operator_name = operator_name
        self.inputs_summary = inputs_summary
        self.path: list[str] | None = None


class NodeExecutionError(ExecutionError):
    """An operator raised while running as a node; the original is `__cause__`.

    It is also an instance of the original's type (`NodeExecutionError.wrapping` builds it),
    so `except ValueError:` around a graph run or a jitted call catches a `ValueError` a
    node raised, as it would around the plain call, and it carries the original's
    attributes (`JSONDecodeError.pos`, `OSError.errno`). Its message is its own: it names
    the node. Only where that type cannot be combined with this one (a `__new__` that wants
    other arguments, a layout conflict) is it a plain `NodeExecutionError`.

    !!! example
        ```python
        @xcs.op
        def parse(text: str) -> int:
            return int(text)


        g = xcs.Graph()
        g.add_node(parse, node_id="parse")
        try:
            xcs.execute_graph(g, {"text": "seven"})
        except xcs.NodeExecutionError as error:
            assert (error.node_id, error.operator_name) == ("parse", "parse")
            assert isinstance(error.__cause__, ValueError)

        try:
            xcs.execute_graph(g, {"text": "seven"})
        except ValueError as error:  # int("seven") raised a ValueError
            assert error.node_id == "parse"
        ```
    """

    @classmethod
    def wrapping(
        cls,
        cause: BaseException,
        message: str,
        *,
        node_id: str | None = None,
        operator_name: str | None = None,
        inputs_summary: str | None = None,
    ) -> NodeExecutionError:
        """The error for node failure `cause`: a `NodeExecutionError` that is also of
        `type(cause)` (chain it: `raise error from cause`)."""
        kind = _node_error_class(type(cause)) if isinstance(cause, Exception) else None
        if kind is None:
            return cls(
                message, node_id=node_id, operator_name=operator_name, inputs_summary=inputs_summary
            )
        # The original's constructor is not called (it may want other arguments); its
        # attributes (`JSONDecodeError.pos`, `OSError.errno`) are copied instead.
        try:
            error = kind.__new__(kind, message)
            BaseException.__init__(error, message)
        except Exception:  # noqa: BLE001 - a __new__ that wants other arguments
            return cls(
                message, node_id=node_id, operator_name=operator_name, inputs_summary=inputs_summary
            )
        _copy_fields(cause, error)
        error.node_id, error.operator_name = node_id, operator_name
        error.inputs_summary = inputs_summary
        error.path = None
        return error

    def as_raised(self) -> NodeExecutionError:
        """This error as the operator raised it: the original's `args` and message (its
        type's own `str`), still a `NodeExecutionError` with `node_id` and the rest.
        What a jitted body's `except` sees, so it reads what the plain call would have
        raised. `self` where the original's type could not be combined with this one."""
        cause = self.__cause__
        kind = type(self)
        if cause is None or kind is NodeExecutionError or not isinstance(self, type(cause)):
            return self
        kind = _raised_class(_original_type(self))
        try:
            view = kind.__new__(kind, *cause.args)
            BaseException.__init__(view, *cause.args)
        except Exception:  # noqa: BLE001 - a __new__ that wants other arguments
            return self
        _copy_fields(cause, view)
        view.__dict__.update(self.__dict__)
        view.raised_as_is = True
        view.__cause__ = cause.__cause__
        view.__suppress_context__ = cause.__suppress_context__
        return view


# type(cause) -> NodeExecutionError subclass that is also a type(cause)
_node_error_classes: dict[type, type | None] = {}


def _node_error_class(cause_type: type) -> type | None:
    if cause_type not in _node_error_classes:
        if issubclass(cause_type, NodeExecutionError) or cause_type is Exception:
            kind = None
        else:
            try:
                kind = type(
                    "NodeExecutionError",
                    (NodeExecutionError, cause_type),
                    {
                        "__module__": __name__,
                        "__qualname__": "NodeExecutionError",
                        "__str__": _node_error_str,
                        "__repr__": _node_error_repr,
                        "__reduce__": _reduce_node_error,
                        "__doc__": NodeExecutionError.__doc__,
                        "_xcs_cause_type": cause_type,
                    },
                )
            except TypeError:  # a layout or metaclass conflict
                kind = None
        _node_error_classes[cause_type] = kind
    return _node_error_classes[cause_type]


# type(cause) -> the class of `as_raised` views: the combined class under the original's
# name, so `type(e).__name__`, `repr(e)` and a traceback read as they would without jit
_raised_classes: dict[type, type] = {}


def _raised_class(cause_type: type) -> type:
    kind = _raised_classes.get(cause_type)
    if kind is None:
        combined = _node_error_class(cause_type)
        names = {k: getattr(cause_type, k) for k in ("__name__", "__qualname__", "__module__")}
        kind = type(names["__name__"], (combined,), {**names, "__doc__": cause_type.__doc__})
        _raised_classes[cause_type] = kind
    return kind


def _node_error_str(error: NodeExecutionError) -> str:
    if error.__dict__.get("raised_as_is"):
        return super(XCSError, error).__str__()  # the original type's own message
    return BaseException.__str__(error)


def _node_error_repr(error: NodeExecutionError) -> str:
    if not error.__dict__.get("raised_as_is"):
        return BaseException.__repr__(error)
    name = _original_type(error).__name__  # as the original's repr reads
    args = error.args
    return f"{name}({args[0]!r})" if len(args) == 1 else f"{name}{args!r}"


_BASE_FIELDS = frozenset(vars(BaseException)) | frozenset(vars(object))


def _copy_fields(source: BaseException, target: BaseException) -> None:
    """Copy `source`'s own attributes, and the C-level fields of its type, to `target`."""
    for klass in type(source).__mro__:
        if klass is BaseException:
            break
        for name, attribute in vars(klass).items():
            if name in _BASE_FIELDS or not isinstance(attribute, _FIELD_TYPES):
                continue
            try:
                value = getattr(source, name)
                if value is not None:  # None is the fresh instance's unset (NULL) too
                    setattr(target, name, value)
            except (AttributeError, TypeError):  # unset, or read-only
                pass
    target.__dict__.update(getattr(source, "__dict__", {}))


_FIELD_TYPES = (types.MemberDescriptorType, types.GetSetDescriptorType)


def _original_type(error: NodeExecutionError) -> type:
    return type(error)._xcs_cause_type  # type: ignore[attr-defined]


def _reduce_node_error(error: NodeExecutionError) -> tuple[Any, ...]:
    raised = type(error) is _raised_classes.get(_original_type(error))
    return _rebuild_node_error, (_original_type(error), error.args, raised), error.__dict__


def _rebuild_node_error(
    cause_type: type, args: tuple[Any, ...], raised: bool = False
) -> NodeExecutionError:
    kind = _node_error_class(cause_type) or NodeExecutionError
    if raised and kind is not NodeExecutionError:
        kind = _raised_class(cause_type)
    error = kind.__new__(kind, *args)
    BaseException.__init__(error, *args)
    return error


class ExecutionTimeoutError(ExecutionError):
    """A graph or node deadline passed. `running` lists the nodes still in flight.

    Raised for `timeout_seconds` (the whole run) and `node_timeout_seconds` (each node,
    with `node_id` and `operator_name` set). Nodes still running cannot be stopped:
    their results are dropped when they arrive.
    """

    def __init__(self, message: str, *, running: Sequence[str] = (), **kwargs: Any):
        super().__init__(message, **kwargs)
        self.running = list(running)


class TraceError(XCSError):
    """Symbolic tracing could not continue (Python needed a concrete value).

    Raised by `jit(strict=True)` instead of a fallback, by `autograph()` when the
    recorded block needs a value, and when a placeholder escapes its trace. The message
    names the file, line and node.
    """


class TransformError(XCSError, ValueError):
    """A transform (vmap, pmap, mesh_sharded) was given inputs it cannot map.

    A `ValueError`, as `jax.vmap`'s own errors for the same misuse are.

    !!! example
        ```python
        try:
            xcs.vmap(lambda x, y: x + y)(jnp.ones(3), jnp.ones(4))
        except xcs.TransformError as error:
            assert "x has size 3" in str(error) and "y has size 4" in str(error)
        ```
    """


class TransformTypeError(TransformError, TypeError):
    """A transform argument has the wrong type (a `str` for `in_axes`, a non-callable `fn`);
    a `TypeError`, as in JAX."""


class AxisNameError(TransformError, NameError):
    """A collective (`jax.lax.psum(x, "j")`) names an axis no enclosing transform binds;
    a `NameError`, as in JAX."""


class ModelError(XCSError):
    """An LLM backend failed. Never carries an API key."""


# acronyms are read letter by letter: "an HTTPModel", "an LLMOperator", "a UUID"
_LETTERS_SAID_WITH_A_VOWEL = frozenset("AEFHILMNORSX")
# a "u" said "you": "a uint8[4]", "a UnicodeError"
_U_SAID_YOU = ("uint", "uni", "use", "usu", "uti")


def with_article(noun: str) -> str:
    """`noun` after "a" or "an", by how it is said: `an int`, `a str`, `an int32[3]`,
    `a uint8[3]`, `an LLMOperator`. Type names, dtypes and class names are what messages
    put here, and these few rules cover them."""
    if len(noun) == 1 or noun[:2].isupper():
        vowel = noun[0].upper() in _LETTERS_SAID_WITH_A_VOWEL
    else:
        lower = noun.lower()
        vowel = lower[:1] in ("a", "e", "i", "o", "u") and not lower.startswith(_U_SAID_YOU)
    return f"{'an' if vowel else 'a'} {noun}"


def summarize_value(value: Any, limit: int = 60) -> str:
    """A short description of `value` for error messages: arrays by shape and dtype.

    Never raises: it runs while an error is being reported, so a value nested 5,000 deep
    or with a broken `__repr__` must not replace the error it describes.
    """
    shape = getattr(value, "shape", None)
    dtype = getattr(value, "dtype", None)
    if shape is not None and dtype is not None:
        return f"{type(value).__name__}[{dtype}{list(shape)}]"
    if isinstance(value, Mapping):
        inner = ", ".join(
            f"{_repr(k)}: {summarize_value(v, 20)}" for k, v in list(value.items())[:4]
        )
        more = ", ..." if len(value) > 4 else ""
        return _truncate("{" + inner + more + "}", limit)
    return _truncate(_repr(value), limit)


# reprlib stops at a depth and a length, so the summary of a huge or deeply nested
# container costs the few characters it shows, not a walk of the whole value
_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxstring, _REPR.maxother = 3, 80, 80


def _repr(value: Any) -> str:
    try:
        return _REPR.repr(value)
    except Exception as exc:  # a user's __repr__ raised
        return f"<{type(value).__name__} (repr failed: {type(exc).__name__})>"


def summarize_inputs(args: Sequence[Any], kwargs: Mapping[str, Any]) -> str:
    """Summarise call arguments as `(arg0, key=value)` with each value shortened."""
    parts = [summarize_value(a) for a in args]
    parts += [f"{k}={summarize_value(v)}" for k, v in kwargs.items()]
    return _truncate("(" + ", ".join(parts) + ")", 240)


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."
