"""Symbols: the placeholder values a symbolic trace passes around.

While `jit` traces a function, its inputs and the outputs of the leaf operators it calls
are `Symbol`s: objects that know *where* a value will come from (input leaf 3, the output
of node `judge`, `['answer']` of that output) but not what it is. Symbols may be stored in
lists, dicts, tuples and dataclasses, passed to other operators, indexed (`out["key"]`,
`out[0]`) and have attributes read (`out.text`): those become projections, evaluated when
the plan runs.

Anything else needs the concrete value: truth tests, `len`, iteration, `str`, f-strings,
arithmetic, comparisons, hashing, calling, `isinstance` from user code. Each of those
raises `TraceStop` carrying a `StopReason` that names the file and line, what was asked
and of which value. `TraceStop` derives from `BaseException` so that a user's
`except Exception:` cannot swallow it and continue the trace with a made-up value; the
stop is also recorded on the tracer, so even a bare `except:` cannot hide it.

A symbol used after its trace ended (it escaped through a global or an attribute) raises
`TraceError` instead of pretending to be a value.
"""

from __future__ import annotations

import dataclasses
import linecache
import os
import sys
import sysconfig
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any

from .._errors import TraceError

if TYPE_CHECKING:
    from ._tracer import NodeRecord, Tracer

__all__ = ["InputRef", "NodeRef", "ProjRef", "StopReason", "Symbol", "TraceStop", "is_symbol"]

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STDLIB_DIRS = tuple({os.path.abspath(sysconfig.get_paths()[k]) for k in ("stdlib", "platstdlib")})
_LIBRARY_DIRS = _STDLIB_DIRS + tuple(
    {os.path.abspath(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
)


# --- where a value comes from ------------------------------------------------------------


@dataclasses.dataclass(frozen=True, eq=False)
class InputRef:
    """Leaf `index` of the flattened `(args, kwargs)` of the jitted call."""

    index: int
    label: str


@dataclasses.dataclass(frozen=True, eq=False)
class NodeRef:
    """The output of a recorded leaf call."""

    record: NodeRecord


@dataclasses.dataclass(frozen=True, eq=False)
class ProjRef:
    """`base[key]` (or `getattr(base, key)` when `attr`), evaluated when the plan runs."""

    base: InputRef | NodeRef | ProjRef
    key: Any
    attr: bool


def describe(ref: InputRef | NodeRef | ProjRef) -> str:
    """A readable description of a value, in the user's names."""
    if isinstance(ref, InputRef):
        return ref.label
    if isinstance(ref, NodeRef):
        rec = ref.record
        return f"the output of node {rec.node_id!r} ({rec.name})"
    suffix = f".{ref.key}" if ref.attr else f"[{ref.key!r}]"
    return f"{suffix} of {describe(ref.base)}"


# --- why a trace stopped ---------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class StopReason:
    """Why a trace could not continue.

    `kind` is `"value"` when Python asked a symbol for its concrete value (the dynamic
    strategy answers those exactly), `"error"` when tracing raised another exception.
    """

    kind: str
    what: str
    value: str
    file: str | None = None
    line: int | None = None
    source: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}: " if self.file else ""
        code = f" (`{self.source}`)" if self.source else ""
        return f"{where}{self.what} {self.value}{code}"


class TraceStop(BaseException):  # noqa: N818 - a control-flow signal, not an error
    """Raised inside a trace when Python needs a value a symbol does not have."""

    def __init__(self, reason: StopReason):
        super().__init__(str(reason))
        self.reason = reason


def _is_library(filename: str) -> bool:
    path = os.path.abspath(filename)
    return path.startswith(_PACKAGE_DIR) or path.startswith(_LIBRARY_DIRS) or filename[:1] == "<"


def user_frame(frame: FrameType | None) -> FrameType | None:
    """The innermost frame at or above `frame` that is the user's code, not a library's."""
    first = frame
    while frame is not None and _is_library(frame.f_code.co_filename):
        frame = frame.f_back
    return frame if frame is not None else first


def reason_at(kind: str, what: str, value: str, frame: FrameType | None) -> StopReason:
    """A `StopReason` located at the user's frame nearest `frame`."""
    frame = user_frame(frame)
    if frame is None:
        return StopReason(kind, what, value)
    filename, line = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(filename, line).strip() or None
    return StopReason(kind, what, value, filename, line, source)


def reason_from_exception(exc: BaseException) -> StopReason:
    """A `StopReason` for an ordinary exception raised while tracing."""
    tb: TracebackType | None = exc.__traceback__
    frame = None
    while tb is not None:  # innermost user frame in the traceback
        if not _is_library(tb.tb_frame.f_code.co_filename):
            frame = tb.tb_frame
        tb = tb.tb_next
    text = f"{type(exc).__name__}: {exc}"
    if frame is None:
        return StopReason("error", "tracing raised", text)
    filename, line = frame.f_code.co_filename, frame.f_lineno
    source = linecache.getline(filename, line).strip() or None
    return StopReason("error", "tracing raised", text, filename, line, source)


# --- the symbol ------------------------------------------------------------------------


def is_symbol(value: Any) -> bool:
    return type(value) is Symbol


class Symbol:
    """A value that exists only once the plan runs; see the module docstring."""

    __slots__ = ("__weakref__", "_ref", "_tracer")

    def __init__(self, tracer: Tracer, ref: InputRef | NodeRef | ProjRef):
        object.__setattr__(self, "_tracer", tracer)
        object.__setattr__(self, "_ref", ref)

    # projections: pure, recorded, evaluated at run time
    def __getitem__(self, key: Any) -> Symbol:
        if _contains_symbol(key):
            _stop(self, "used a traced value as the index into")
        return Symbol(self._tracer, ProjRef(self._ref, key, False))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return Symbol(self._tracer, ProjRef(self._ref, name, True))

    def __setattr__(self, name: str, value: Any) -> None:
        _stop(self, f"set attribute {name!r} on")

    def __repr__(self) -> str:
        if self._tracer.active:
            _stop(self, "asked for repr() of")
        return f"<jit placeholder for {describe(self._ref)}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        ref = self._ref
        if isinstance(ref, ProjRef) and ref.attr:
            _stop(self, f"called .{ref.key}() on", value=describe(ref.base))
        _stop(self, "called")

    @property  # type: ignore[misc]
    def __class__(self) -> type:  # noqa: D105
        # isinstance() consults __class__ when the type check fails. Our own code may ask
        # (it gets Symbol); user code must not get a made-up answer, so its trace stops.
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(_STDLIB_DIRS):
            frame = frame.f_back
        if frame is None or frame.f_code.co_filename.startswith(_PACKAGE_DIR):
            return Symbol
        _stop(self, "checked the type (isinstance) of")
        return Symbol  # unreachable


def _contains_symbol(value: Any) -> bool:
    if type(value) is Symbol:
        return True
    if type(value) in (tuple, list):
        return any(_contains_symbol(v) for v in value)
    if type(value) is slice:
        return any(_contains_symbol(v) for v in (value.start, value.stop, value.step))
    return False


def _stop(symbol: Symbol, what: str, *, value: str | None = None) -> None:
    tracer = object.__getattribute__(symbol, "_tracer")
    ref = object.__getattribute__(symbol, "_ref")
    label = value if value is not None else describe(ref)
    if not tracer.active:
        raise TraceError(
            f"a jit placeholder ({label}) was used after its trace ended: a value computed "
            "inside a jitted function escaped through a global, an attribute or a closure; "
            "return it from the function instead"
        )
    reason = reason_at("value", f"Python {what}", label, sys._getframe(2))
    tracer.note_stop(reason)
    raise TraceStop(reason)


_DUNDERS = {
    "__bool__": "needed the truth value (if / and / or / not) of",
    "__len__": "asked for len() of",
    "__iter__": "iterated over (for, unpacking, list()) ",
    "__reversed__": "iterated over (reversed) ",
    "__contains__": "used `in` on",
    "__str__": "asked for str() of",
    "__format__": "formatted (f-string or format()) ",
    "__bytes__": "asked for bytes() of",
    "__int__": "asked for int() of",
    "__float__": "asked for float() of",
    "__complex__": "asked for complex() of",
    "__index__": "used as an index",
    "__round__": "asked for round() of",
    "__hash__": "hashed (as a dict key or set member)",
    "__setitem__": "assigned an item of",
    "__delitem__": "deleted an item of",
    "__enter__": "entered a `with` block on",
    "__exit__": "left a `with` block on",
    "__array__": "converted to a NumPy array",
    "__neg__": "negated",
    "__pos__": "applied unary + to",
    "__abs__": "asked for abs() of",
    "__invert__": "applied ~ to",
}
_OPERATORS = {
    "eq": "==",
    "ne": "!=",
    "lt": "<",
    "le": "<=",
    "gt": ">",
    "ge": ">=",
    "add": "+",
    "sub": "-",
    "mul": "*",
    "matmul": "@",
    "truediv": "/",
    "floordiv": "//",
    "mod": "%",
    "divmod": "divmod",
    "pow": "**",
    "lshift": "<<",
    "rshift": ">>",
    "and": "&",
    "xor": "^",
    "or": "|",
}


def _make_stopper(what: str) -> Any:
    def method(self: Symbol, *args: Any, **kwargs: Any) -> Any:
        _stop(self, what.rstrip() if what.endswith(" ") else what)

    return method


for _name, _what in _DUNDERS.items():
    setattr(Symbol, _name, _make_stopper(_what))
for _op, _sign in _OPERATORS.items():
    setattr(Symbol, f"__{_op}__", _make_stopper(f"applied `{_sign}` to"))
    if _op not in ("eq", "ne", "lt", "le", "gt", "ge"):
        setattr(Symbol, f"__r{_op}__", _make_stopper(f"applied `{_sign}` to"))
        setattr(Symbol, f"__i{_op}__", _make_stopper(f"applied `{_sign}=` to"))
del _name, _what, _op, _sign


def _length(symbol: Symbol) -> int | None:
    """How many items iterating `symbol` gives, when the trace knows its structure."""
    tracer = object.__getattribute__(symbol, "_tracer")
    known = tracer.structure_of(object.__getattribute__(symbol, "_ref")) if tracer.active else None
    if isinstance(known, tuple | list):
        return len(known)
    shape = getattr(known, "shape", None)
    return shape[0] if shape else None


def _iter(self: Symbol) -> Any:
    n = _length(self)
    if n is None:
        _stop(self, _DUNDERS["__iter__"].rstrip())
    return iter([self[i] for i in range(n)])  # type: ignore[index]


def _len(self: Symbol) -> int:
    n = _length(self)
    if n is None:
        _stop(self, _DUNDERS["__len__"])
    return n  # type: ignore[return-value]


Symbol.__iter__ = _iter  # type: ignore[method-assign]  # a numeric op's output unpacks
Symbol.__len__ = _len  # type: ignore[method-assign]


_DICT_VIEWS = (type({}.values()), type({}.items()), type({}.keys()))


def first_symbol(value: Any) -> Any:
    """The first placeholder in `value` or its lists, tuples, sets, dicts, dict views and
    dataclasses; `None` if there is none."""
    kind = type(value)
    if kind is Symbol:
        return value
    if kind in (list, tuple, set, frozenset) or isinstance(value, tuple) or kind in _DICT_VIEWS:
        items = value
    elif isinstance(value, dict):
        items = value.values()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = [getattr(value, f.name) for f in dataclasses.fields(value)]
    else:
        return None
    for item in items:
        found = first_symbol(item)
        if found is not None:
            return found
    return None
