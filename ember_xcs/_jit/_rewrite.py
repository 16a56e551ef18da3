"""Rewriting a jitted body so lazy results only ever meet user code as real values.

The dynamic strategy dispatches each leaf call asynchronously and hands the body a
`LazyResult`. A proxy cannot be a `str` to C code (`re`, `json`, `str.join`), so instead of
asking the proxy to pass for the value, this module rewrites the function's own code (its
AST, as TensorFlow's autograph and Numba do) so that every place the code *uses* a value
resolves it first:

| in the code | rewritten to |
|---|---|
| `f(a, b)` | `call(f, a, b)`: an operator gets `a`, `b` as they are (the call waits for them, not the body); any other callable gets them resolved, containers, `dict.values()` views and iterators (`reversed`, `zip`, `map`, generators) included (a list, dict or deque is resolved in place and passed itself, since the callee may change it: `random.shuffle(xs)`, `heapq.heapify(xs)`); a callable that consumes a whole iterable (`str.join`, `sum`, `sorted`, `set`, `min`, `max`, `Counter`) gets a generator run to its end first, so its calls overlap; `any`/`all` pull one item at a time |
| `sorted(xs, key=k)`, `min`, `max`, `xs.sort(key=k)`, `heapq.nlargest(n, xs, key=k)`, `nsmallest` | where `k` may call operators (a rewritten function or lambda, an operator): every item's key first, with its calls in flight together, then the comparisons on the real keys |
| `re.sub(p, f, s)`, `re.subn`, `pattern.sub(f, s)` | `f` wrapped so that what it returns is resolved: re needs the string at once, and a `def` returning a leaf call would hand it a pending result |
| `Row(a)`, `row._replace(f=a)`, `Row._make(xs)` (a dataclass or named tuple) | `a` as it is: a record stores its fields, as a list does |
| `x.attr` | `attr(x, "attr")`: the field of a pending result is itself lazy (`model.complete(p).text` does not wait for the call); a property of the user's class runs its rewritten getter; of anything else, the attribute |
| `lambda a: e` | `lambda a: ret(e)`: where rewritten code calls it, `e` as it is; where other code calls it (`map`, `functools.reduce`), resolved |
| `x[i]`, `x + y`, `x == y`, `not x`, `x and y` | each operand resolved: `r(x)[r(i)]`, ... |
| `f"{x}"` | `f"{rr(x)}"` (containers too) |
| `if x:`, `while x:`, `assert x`, `for a in x:`, `a, b = x`, `raise x` | `r(x)` |
| `with m:` | `r(m)`; where `m` may see an exception (`contextlib.suppress`, a user's own manager: anything but a lock, a file, `nullcontext`, `redirect_stdout`/`redirect_stderr`, `chdir`, `track_usage()` or `execution_options`), each call in the body waits as in a `try` body, so the manager sees a failed call's error; under `redirect_stdout`, `redirect_stderr`, `chdir`, `track_usage()` or `execution_options` the calls overlap and all finish before the block ends, so they run under what the manager set up |
| `f(a)` in a `try` body | `try_call(f, a)`: the call, then a wait for its result, so a leaf call that fails raises at the call, before its result is bound or stored, as the plain call would; the end of the body (and each `return`/`break`/`continue` in it) also waits for every call dispatched since it began, raising a failure an inner `try` has not already caught. Independent calls inside one `try` body therefore run one after another: make them before the `try` to overlap them |
| `try: ... except E:`, `with m:` | the body wrapped so that what it raises goes through `escape` first: the failure of a call made before the body began (raised where its result is used) passes the handlers and managers as `Escaping`, as plain Python raised it at the call, before reaching them |
| `return x`, `y = x`, `[x, y]`, `{"k": x}` | unchanged: the value flows on, and is resolved where it is used or when the jitted call returns |
| `xs.append(x)`, `d[k] = x`, `obj.f = x`, `obj.f += [x]`, `g = x`, `g += [x]` (`global g` or `nonlocal g`) | unchanged (`d` and `obj` any expression, evaluated once, in Python's order); where `x` holds a pending result, `xs`, `d`, `obj`, the global's slot or the nonlocal's cell is noted, and when the body returns its pending results are replaced in place by their values (`_stores`): a list argument, a global cache or an operator's history outlives the run. A library object with its own `__setitem__` (a NumPy array) is library code taking the value: it gets it resolved (`_store_target`). In a trace, a placeholder left in one (not made by the body, or kept elsewhere, and not returned) stops the trace, after the placeholders are taken back out |

`r(x)` is an identity check for a value that is not lazy (`type(x) is LazyResult`), so
code on real values pays one function call per use. Calls made from the rewritten body to
the user's own Python functions and methods, and to composite operators' `forward`, are
rewritten the same way (recursively, once per code object), so a helper passes lazy
values through as the body does; so are generator functions, lambdas (found in their
file by line, parameters and where the body starts), property getters and `__call__` of
the user's classes, and the function behind a `functools.wraps` decorator. Library code (the standard library, installed packages,
ember_xcs itself) is never rewritten: it gets resolved values.

The same rewritten code runs during a symbolic trace: there `r(x)` is an identity on
placeholders, a placeholder passed to a non-operator callable stops the trace with the
callable's name (so `json.loads(answer)` falls back to dynamic dispatch instead of
running as written; so does one yielded by a generator argument, as the callee pulls it:
`", ".join(ask(q) for q in qs)`), and a `try` body that made a leaf call stops the trace (a plan could
not run the `except` branch); so does a `with` body that made one under a manager that
may see its error.

Where the source is unavailable (a function typed into a REPL or made by `exec`/`eval`,
a builtin, a C function) or is a coroutine function, the function runs as written, with
`LazyResult` proxies; `explain_jit_selection` says which path ran and why (`describe`).
"""

from __future__ import annotations

import ast
import collections
import contextlib
import dataclasses
import functools
import heapq
import inspect
import io
import itertools
import linecache
import logging
import re
import sys
import textwrap
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from .._errors import XCSError
from .._options import execution_options
from ..operators import Operator, current_call_handler, is_model, method_leaf
from ..scheduling import InlineExecutor, usage_meter
from ._containers import ATOMS as _ATOMS
from ._dynamic import Escaping, LazyResult, _Dispatcher, _lazies, _resolve_all, project, resolve
from ._inert import inert
from ._stores import (
    UNKNOWN,
    body_failed,
    body_returned,
    cache_kept,
    note_store,
    owner,
    settle_in_place,
    stored,
    stored_cell,
    stored_global,
)
from ._symbols import (
    Symbol,
    TraceStop,
    _is_library,
    _stop,
    first_symbol,
    reason_at,
    user_frame,
)
from ._tracer import Tracer

__all__ = ["call", "describe", "entry", "warn_if_serial"]

logger = logging.getLogger("ember_xcs.jit")

_R, _RR, _RET, _CALL, _TRY_CALL, _WITH_CALL, _MARK, _SETTLE, _SETTLED, _ATTR = (
    "__xcs_r", "__xcs_rr", "__xcs_ret", "__xcs_call", "__xcs_try_call", "__xcs_with_call",
    "__xcs_mark", "__xcs_settle", "__xcs_settled", "__xcs_attr",
)  # fmt: skip
_ESCAPE, _ESCAPING, _ANY_ERROR, _CAUGHT = "__xcs_escape", "__xcs_escaping", "__xcs_any", "__xcs_e"
_STORED, _STORED_GLOBAL, _STORED_CELL, _OWNER, _VALUE = (
    "__xcs_stored",
    "__xcs_stored_global",
    "__xcs_stored_cell",
    "__xcs_owner",
    "__xcs_v",
)
# frame-sensitive builtins: a call through `call` would run them in the wrong frame
_FRAME_BUILTINS = frozenset({"super", "locals", "vars", "globals", "eval", "exec", "dir"})
_NOT_REWRITTEN = inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR


# --- resolving, in the rewritten code -----------------------------------------------------


def _r(value: Any) -> Any:
    """A use of `value`: the real value (an identity check when it is not lazy)."""
    if type(value) is not LazyResult:
        return value
    return _wait(value, sys._getframe(1))


def _rr(value: Any) -> Any:
    """A use of `value` and of everything in its containers."""
    if type(value) is LazyResult:
        return _wait(value, sys._getframe(1))
    return _resolve_deep(value, sys._getframe(1))


def _ret(value: Any) -> Any:
    """What a lambda returns: as it is where rewritten code called it (`_raw_call`);
    otherwise resolved, containers too, since the code calling it is not ours (`map`,
    `functools.reduce`)."""
    frame = sys._getframe(1)
    if frame.f_back is not None and frame.f_back.f_code is _RAW_CALLER:
        return value
    if type(value) is LazyResult:
        return _wait(value, frame)
    return _resolve_deep(value, frame)


def _raw_call(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` for rewritten code: a lambda returns its result unresolved."""
    return fn(*args, **kwargs)


_RAW_CALLER = _raw_call.__code__


def _wait(lazy: LazyResult, frame: types.FrameType) -> Any:
    """`resolve(lazy)`, noting where the body waited if it was still pending (a failure
    raised here is the body's to catch: the run then does not raise it again)."""
    run, index = object.__getattribute__(lazy, "_run"), object.__getattribute__(lazy, "_index")
    if not run.is_done(index):
        _note_forced(current_call_handler(), run, index, frame)
    return resolve(lazy)


def _note_forced(handler: Any, run: Any, index: int, frame: types.FrameType) -> None:
    """Where the body waited, and how many calls it had made: `warn_if_serial`'s evidence."""
    if isinstance(handler, _Dispatcher) and handler.run is run and len(handler.forced) < 64:
        frame = user_frame(frame) or frame  # not `_try_call`'s own, in a `try` body
        where = (frame.f_code.co_filename, frame.f_lineno)  # formatted if ever warned
        handler.forced.append((run.nodes[index].node_id, where, len(run.nodes)))


def _resolve_deep(value: Any, frame: types.FrameType) -> Any:
    if type(value) in _ATOMS:
        return value
    lazies = _lazies(value)
    if not lazies:
        return value
    for lazy in lazies:  # wait here, so the line is known and the failure handled
        _wait(lazy, frame)
    return _resolve_all(value)


# --- try blocks ----------------------------------------------------------------------------


def _mark() -> int:
    """Where a `try` body begins: the number of calls dispatched (or recorded) so far."""
    handler = current_call_handler()
    if isinstance(handler, _Dispatcher):
        return len(handler.run.nodes)
    if isinstance(handler, Tracer):
        return len(handler.records)
    return 0


def _settle(mark: int, *managers: Any, frame: types.FrameType | None = None) -> None:
    """The end of a `try` body (or of a `with` body whose `managers` may see its errors or
    scope its calls): wait for the calls it dispatched; raise the first failure the body
    has not handled (one a nested `try` caught was raised once, as the plain call was)."""
    if managers and _owed(managers) is _NOTHING:
        return
    handler = current_call_handler()
    frame = frame or sys._getframe(1)
    if isinstance(handler, _Dispatcher):
        run = handler.run
        errors, seen = run.errors, run.seen
        for index in range(mark, len(run.nodes)):
            error = errors.get(index)
            if error is None or id(error) not in seen:
                _wait(LazyResult(run, index), frame)
    elif isinstance(handler, Tracer) and len(handler.records) > mark:
        rec = handler.records[mark]
        if not managers:
            what = "Python needs to know whether a leaf call in a `try` body raises:"
        elif _owed(managers) is _SEES:
            what = "Python needs to know whether a leaf call in a `with` body raises:"
        else:
            what = "a leaf call in a `with` body must run inside the block:"
        reason = reason_at("value", what, f"the output of node {rec.node_id!r} ({rec.name})", frame)
        handler.note_stop(reason)
        raise TraceStop(reason)


def _escape(error: BaseException, mark: int) -> None:
    """In the handler wrapped around a `try` body that began at `mark`: raise `error` on
    as `Escaping` (no handler of this `try` may see it) where it is the failure of a leaf
    call made before the body began, which plain Python raised at the call, before it
    reached this `try`; raise an `Escaping` unwrapped where this `try` began before the
    call. Anything else returns, and the wrapper re-raises it as it is."""
    if type(error) is Escaping:
        if error.index >= mark:
            inner = error.unwrapped()
            raise inner from inner.__cause__
        return
    if not isinstance(error, XCSError):
        return
    handler = current_call_handler()
    if isinstance(handler, _Dispatcher):
        index = _failed_call(handler.run, error)
        if index is not None and index < mark:
            raise Escaping(error, index) from None


def _failed_call(run: Any, error: BaseException) -> int | None:
    """The index of the failed call of `run` that `error` (the view the body was handed,
    `NodeExecutionError.as_raised`) reports, if it is one."""
    node_id = getattr(error, "node_id", None)
    if node_id is None:
        return None
    view = getattr(error, "raised_as_is", False)  # its cause is the original's cause
    for index, failure in run.errors.items():
        if run.nodes[index].node_id == node_id and (
            failure is error or view or failure.__cause__ is error.__cause__
        ):
            return index
    return None


def _try_call(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` inside a `try` body: `call`, then wait for what it returned,
    so a failed leaf call raises at the call, before its result can be bound to a name,
    appended or stored (the plain call would have raised before any of that)."""
    out = call(fn, *args, **kwargs)
    if type(out) is LazyResult:
        return _wait(out, sys._getframe(1))
    if type(out) not in _ATOMS and type(out) is not Symbol:
        for lazy in _lazies(out):
            _wait(lazy, sys._getframe(1))
    return out


def _settled(mark: int, value: Any, *managers: Any) -> Any:
    """`return value` inside a `try` body (or a `with` body of `managers`)."""
    _settle(mark, *managers, frame=sys._getframe(1))
    return value


def _with_call(managers: tuple[Any, ...], fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` inside `with` bodies of `managers`: a call, or, where a
    manager may see the call's error (`contextlib.suppress`, a user's own), `_try_call`."""
    if _owed(managers) is not _SEES:
        return call(fn, *args, **kwargs)
    return _try_call(fn, *args, **kwargs)


# what a `with` body's calls owe its managers: to wait each at the call, as in a `try`
# body, where a manager may see a call's error; to finish before the block ends where a
# manager never looks at errors but sets up state the calls run under; or nothing
_SEES, _SCOPE, _NOTHING = "sees", "scope", "nothing"


def _owed(managers: tuple[Any, ...]) -> str:
    """What the calls in a `with` body of `managers` owe them: `_NOTHING` where each one
    never looks at an exception and scopes nothing (a lock, a file, `nullcontext`: errors
    may surface after the block, as elsewhere in the body); `_SCOPE` where one sets up
    process-wide state (`redirect_stdout`: a leaf's `print` goes to the buffer), so the
    calls overlap and all finish before the block ends; `_SEES` for any other manager."""
    owed = _NOTHING
    for manager in managers:
        kind = type(manager)
        known = _OWED.get(kind)
        if known is None:
            known = _OWED[kind] = _owed_by(kind)
        if known is _SEES:
            return _SEES
        if known is _SCOPE:
            owed = _SCOPE
    return owed


def _owed_by(kind: type) -> str:
    if issubclass(kind, io.IOBase) or kind in _INERT_TYPES:
        return _NOTHING
    return _SCOPE if kind in _SCOPE_TYPES else _SEES


_INERT_TYPES = (
    type(threading.Lock()), type(threading.RLock()), threading.Condition, threading.Semaphore,
    threading.BoundedSemaphore, contextlib.nullcontext,
)  # fmt: skip
# their `__exit__` restores what `__enter__` changed and never looks at the exception
# `usage_meter`: `models.track_usage()`, whose totals the body reads after the block;
# `execution_options`: its calls run under its options wherever they run (`CallScope`),
# and what its hooks counted is read after the block
_SCOPE_TYPES = (
    contextlib.redirect_stdout, contextlib.redirect_stderr, contextlib.chdir, usage_meter,
    execution_options,
)  # fmt: skip
_OWED: dict[type, str] = {}


# --- calls from rewritten code ---------------------------------------------------------------

# callables that only move values around: lazy values pass through them unresolved
_PASS = frozenset({list, tuple, dict, zip, enumerate, reversed, iter, id, itertools.islice})
_PASS_METHODS = frozenset({
    (list, "append"), (list, "extend"), (list, "insert"), (list, "copy"),
    (dict, "update"), (dict, "setdefault"), (dict, "copy"), (dict, "get"), (dict, "items"),
    (dict, "values"), (dict, "keys"), (deque, "append"), (deque, "appendleft"),
})  # fmt: skip
_STORING = frozenset({"append", "extend", "insert", "update", "setdefault", "appendleft"})
_SHALLOW = frozenset({len, isinstance, type, callable, bool, hasattr, getattr, setattr})
_BUILTIN_METHOD = type([].append)
_BUILTIN_FUNCTION = type(len)
_CACHED = type(functools.cache(len))  # functools.lru_cache and cache wrappers
# C functions and classes: never operators, models or rewritable code, so with plain
# arguments every branch of `call` comes down to calling them as they are
_C_CALLABLES = frozenset({_BUILTIN_FUNCTION, _BUILTIN_METHOD, type})
# values that hold nothing `_real` would resolve: `call` passes them on without a walk
_PLAIN = _ATOMS | _C_CALLABLES | {types.FunctionType, range}
# iterators that may yield lazy results (`reversed(answers)`, `zip(qs, answers)`,
# `map(op, xs)`): a callable that needs real values gets their items resolved
_ITERATORS = frozenset({
    types.GeneratorType, map, filter, zip, enumerate, reversed, type(iter([])),
    type(reversed([])), type(iter(())), type(iter({}.values())), type(iter({}.items())),
    itertools.chain, itertools.islice, itertools.zip_longest, itertools.starmap,
})  # fmt: skip
# callables that consume every item of an iterable: a generator argument is run to its
# end first, so the calls it makes are all in flight before the first is waited for
_CONSUMERS = frozenset({sorted, sum, min, max, set, frozenset, collections.Counter})
# ember_xcs's own callables that know about traces and runs (the models take real values)
_JIT_AWARE = ("ember_xcs.scheduling", "ember_xcs.transforms", "ember_xcs.graph")


def call(fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` from rewritten code; see the module docstring."""
    kind = type(fn)
    if fn is re.sub or fn is re.subn or kind is _PATTERN_METHOD:
        args, kwargs = _real_repl(fn, args, kwargs, sys._getframe(1))
    if "key" in kwargs:  # sorted(xs, key=lambda x: score(x)), heapq.nlargest(...)
        if kind in _C_CALLABLES:
            out = _keyed(fn, args, kwargs)
        elif fn is heapq.nlargest or fn is heapq.nsmallest:
            out = _heap_keyed(fn, args, kwargs)
        else:
            out = _MISSING
        if out is not _MISSING:
            return out
    if kind in _C_CALLABLES and _plain(args) and (not kwargs or _plain(kwargs.values())):
        return fn(*args, **kwargs)  # every branch below calls these as they are
    if kind is LazyResult:  # `x.method(...)` of a pending result: the caller's line waits
        fn = _wait(fn, sys._getframe(1))
        kind = type(fn)
    elif kind is Symbol:  # `x.method(...)` of a placeholder: a trace cannot call it, and
        fn(*args, **kwargs)  # its `__call__` stops the trace naming the method
    if kind in _OPERATOR_TYPES or (kind not in _C_CALLABLES and _is_operator(fn, kind)):
        return _call_operator(fn, args, kwargs)
    if kind is types.MethodType and _is_model_call(fn):
        handler = current_call_handler()
        if handler is not None:  # a model called directly: one leaf call of the run
            if getattr(fn.__self__, "async_native", False):  # it hands itself to the run
                return fn(*args, **kwargs)
            return handler(method_leaf(fn.__self__, fn.__name__), args, kwargs)
    elif kind is types.MethodType and _is_model_state_read(fn):
        _settle_model_calls(fn.__self__, f".{fn.__name__}()", sys._getframe(1))
    if kind is types.FunctionType:
        if inert(fn, args, kwargs):  # real values in, no operator within reach
            return fn(*args, **kwargs)
        converted = convert(fn)
        if converted is not None:
            return _raw_call(converted, *args, **kwargs)
        if fn.__code__.co_flags & inspect.CO_COROUTINE:  # nothing runs: jit refuses the
            return fn(*args, **kwargs)  # coroutine if the body returns it
        if fn is dataclasses.replace and len(args) == 1:  # stores the old and the new
            record = args[0]  # field values, as a constructor does: none is waited for
            if type(record) is LazyResult:
                record = _wait(record, sys._getframe(1))
            return fn(record, **kwargs)
    elif kind is types.MethodType:
        converted = convert(fn.__func__) if type(fn.__func__) is types.FunctionType else None
        if converted is not None:
            return converted(fn.__self__, *args, **kwargs)
        if fn.__name__ in _RECORD_METHODS and _is_record_type(_owner_type(fn.__self__)):
            return fn(*args, **kwargs)  # `row._replace(label=ask(q))` stores, as `Row(...)` does
    elif kind is functools.partial:
        return call(fn.func, *fn.args, *args, **{**fn.keywords, **kwargs})
    elif kind.__name__ == "JittedFunction" and hasattr(fn, "_target"):
        return call(fn._target.call, *args, **kwargs)  # inline, as inside any run
    elif type(dunder := getattr(kind, "__call__", None)) is types.FunctionType:  # noqa: B004
        converted = convert(dunder)  # an instance of the user's class with `__call__`
        if converted is not None:
            return converted(fn, *args, **kwargs)
    elif kind is _BUILTIN_METHOD and (type(fn.__self__), fn.__name__) in _PASS_METHODS:
        if args and type(fn.__self__) is dict:
            args = _as_keys(fn.__name__, args, sys._getframe(1))
        if fn.__name__ in _STORING:  # `out.append(answer)`: `out` may outlive the run
            note_store(fn.__self__, UNKNOWN, sys._getframe(1))
        return fn(*args, **kwargs)
    if kind is type or kind is _BUILTIN_FUNCTION:
        if fn in _PASS:
            args = _passed(args, sys._getframe(1))
            if fn is dict and args:
                args = _as_keys("update", args, sys._getframe(1))
            return fn(*args, **kwargs)
        if _is_record_type(fn):
            return fn(*args, **kwargs)
        if fn in _SHALLOW:
            frame = sys._getframe(1)
            return fn(*[_shallow(fn, a, frame) for a in args], **kwargs)
    if kind is _CACHED:  # `functools.cache`: it keeps what it returns (`_stores`)
        if not _plain(args) or kwargs and not _plain(kwargs.values()):
            frame = sys._getframe(1)
            args, kwargs = _real(fn, args, frame), _real(fn, kwargs, frame)
        out = fn(*args, **kwargs)
        cache_kept(fn, out)
        return out
    if (getattr(fn, "__module__", None) or "").startswith(_JIT_AWARE):
        return fn(*args, **kwargs)  # execute_graph, transforms: they hand calls to the run
    if _plain(args) and (not kwargs or _plain(kwargs.values())):
        return fn(*args, **kwargs)
    frame = sys._getframe(1)
    return fn(*_real(fn, args, frame), **_real(fn, kwargs, frame))


def _passed(args: tuple[Any, ...], frame: types.FrameType) -> tuple[Any, ...]:
    """The arguments of a `_PASS` callable: a pending result passed whole is waited for
    (`list`, `zip`, `reversed`, `dict` iterate their argument at once, so nothing is lost,
    and its proxy has no `__reversed__` of a `str`); the results *inside* a container
    argument pass through unresolved."""
    for value in args:
        if type(value) is LazyResult:
            return tuple(_wait(v, frame) if type(v) is LazyResult else v for v in args)
    return args


def _as_keys(method: str, args: tuple[Any, ...], frame: types.FrameType) -> tuple[Any, ...]:
    """The arguments of `d.setdefault(key, ...)`, `d.get(key, ...)`, `d.update(pairs)` or
    `dict(pairs)` with each pending result that becomes a key waited for (hashing it
    waits anyway): a dict holds the value as its key, never a proxy of it, as
    `json.dumps(d)`, `", ".join(d)` and `type(key)` see. Values stay pending."""
    first = args[0]
    if method in ("setdefault", "get"):
        return (_wait(first, frame), *args[1:]) if type(first) is LazyResult else args
    if method != "update" or type(first) is dict or hasattr(first, "keys"):
        return args
    pairs = _wait(first, frame) if type(first) is LazyResult else first
    return (_keys_of_pairs(pairs, frame), *args[1:])  # more than one: the call says so


def _keys_of_pairs(pairs: Any, frame: types.FrameType) -> Any:
    """`(key, value)` pairs as `dict` reads them, each pending key waited for."""
    for pair in pairs:
        if type(pair) in (tuple, list) and len(pair) == 2 and type(pair[0]) is LazyResult:
            pair = (_wait(pair[0], frame), pair[1])
        yield pair


def _keyed(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`sorted`, `min`, `max` or `list.sort` with a key that may call operators: every
    item's key first, with its calls in flight together, then the comparisons on the
    real keys (the same keys, computed in the same order; `_MISSING`: not such a call)."""
    sort = type(fn) is _BUILTIN_METHOD and type(fn.__self__) is list and fn.__name__ == "sort"
    allowed = _KEYED.get(fn) if type(fn) is _BUILTIN_FUNCTION else None
    if sort:
        allowed, args = _SORT_OPTIONS, (fn.__self__,)
    key = _deferred_key(kwargs["key"]) if allowed and not kwargs.keys() - allowed else None
    if key is None or not args or (len(args) > 1 and (fn is sorted or "default" in kwargs)):
        return _MISSING  # not ours, or wrong arguments: the builtin says what is wrong
    frame = sys._getframe(2)
    items = args[0] if len(args) == 1 else args
    items = _wait(items, frame) if type(items) is LazyResult else items
    items = items if sort else list(items)
    keys = _resolve_deep([_raw_call(key, item) for item in items], frame)
    order = range(len(items))
    if fn is min or fn is max:
        if not items:
            return fn((), **{k: v for k, v in kwargs.items() if k != "key"})
        return items[fn(order, key=keys.__getitem__)]
    order = sorted(order, key=keys.__getitem__, reverse=_r(kwargs.get("reverse", False)))
    ranked = [items[i] for i in order]
    if sort:
        items[:] = ranked
        return None
    return ranked


_PATTERN_METHOD = type(re.compile("").sub)  # a C method type of its own (`builtin_method`)


def _real_repl(
    fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], frame: types.FrameType
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """`re.sub(pattern, repl, text)` (`subn`, `pattern.sub(repl, text)`) where `repl` is a
    function: re calls it and needs the string it returns at once, so what it returns is
    waited for (a `def` that returns `expand(m.group(1))` would hand re a pending result)."""
    at = 1 if type(fn) is types.FunctionType else 0
    if at == 0 and (type(fn.__self__) is not re.Pattern or fn.__name__ not in ("sub", "subn")):
        return args, kwargs
    if len(args) > at:
        repl = args[at]
    elif "repl" in kwargs:
        repl = kwargs["repl"]
    else:
        return args, kwargs  # re says what is missing
    if callable(repl) and type(repl) is not LazyResult:
        original = repl

        def repl(match: Any) -> Any:
            return _resolve_deep(call(original, match), frame)

    if len(args) > at:
        return (*args[:at], repl, *args[at + 1 :]), kwargs
    return args, {**kwargs, "repl": repl}


def _heap_keyed(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """`heapq.nlargest(n, items, key=k)` or `nsmallest` where `k` may call operators: as
    `_keyed`, every item's key first (for `n >= 1` heapq computes each item's key once, in
    order), then heapq on the items' positions ranked by the real keys, which breaks ties
    by position as heapq does (`_MISSING`: not such a call, or `n < 1`, which calls no key)."""
    key = _deferred_key(kwargs["key"]) if len(args) == 2 and len(kwargs) == 1 else None
    if key is None:
        return _MISSING
    frame = sys._getframe(2)
    n, items = (_wait(a, frame) if type(a) is LazyResult else a for a in args)
    if type(n) is not int or n < 1:
        return _MISSING
    items = list(items)
    keys = _resolve_deep([_raw_call(key, item) for item in items], frame)
    return [items[i] for i in fn(n, range(len(items)), key=keys.__getitem__)]


_SORT_OPTIONS = frozenset({"key", "reverse"})
_KEYED = {sorted: _SORT_OPTIONS, min: frozenset({"key", "default"})}
_KEYED[max] = _KEYED[min]


def _deferred_key(key: Any) -> Callable[[Any], Any] | None:
    """`key` as a function that does not wait for its result (a rewritten function or
    lambda, an operator), or `None` for a key that cannot call operators (`len`,
    `str.lower`, `counts.get`) or is not rewritten."""
    if isinstance(current_call_handler(), Tracer):
        return None  # a trace stops at the placeholders, as for any C function
    kind = type(key)
    if kind is types.FunctionType:
        return convert(key)
    if kind in (types.MethodType, functools.partial) or isinstance(key, Operator):
        return lambda item: call(key, item)
    return None


def _plain(values: Any) -> bool:
    """No value is, or can hold, a lazy result or a placeholder: nothing to resolve."""
    for value in values:
        if type(value) not in _PLAIN:
            return False
    return True


_MODEL_METHODS = frozenset({"complete"})
_NATIVE_MODEL_METHODS = frozenset({"complete", "stream"})


def _is_model_call(method: types.MethodType) -> bool:
    """`model.complete` of anything that follows the `Model` protocol (`name`, `complete`,
    `acomplete`) and is not an operator, or `model.stream` of a model that routes its own
    calls to the run (`async_native`, the HTTP model): called with placeholders in a
    trace, or pending results in a dynamic run, as a leaf call is."""
    owner = method.__self__
    native = getattr(owner, "async_native", False)
    return method.__name__ in (_NATIVE_MODEL_METHODS if native else _MODEL_METHODS) and is_model(
        owner
    )


# the protocol's calls, and what the HTTP model runs on the engine's loop for them
_MODEL_CALLS = frozenset({"complete", "acomplete", "stream", "astream", "astream_pieces"})


def _is_model_state_read(method: types.MethodType) -> bool:
    """Any other method of a model (`stats()`, `reset_counters()`): it sees the calls made
    so far, as plain Python would have made them by then."""
    return method.__name__ not in _MODEL_CALLS and is_model(method.__self__)


def _settle_model_calls(owner: Any, what: str, frame: types.FrameType) -> None:
    """Before `model.stats()` or `model.calls` is read: wait for every call dispatched so
    far (a dynamic run), or stop the trace (a plan would replay the state read while
    tracing)."""
    handler = current_call_handler()
    if isinstance(handler, _Dispatcher):
        run = handler.run
        for index in range(len(run.nodes)):
            _wait(LazyResult(run, index), frame)
    elif isinstance(handler, Tracer):
        read = f"Python read the state of model {owner.name!r} with {what}:"
        reason = reason_at("value", read, "the calls made so far", frame)
        handler.note_stop(reason)
        raise TraceStop(reason)


def _attr(value: Any, name: str) -> Any:
    """`value.name` from rewritten code: `project`, except that a property of the user's
    own class runs its getter rewritten (it may call operators and use their results)."""
    kind = type(value)
    if kind in _ATOMS or kind is LazyResult or kind is types.ModuleType:
        return project(value, name)
    getters = _getters.get(kind)
    if getters is None:
        getters = _user_getters(kind)
        if "<locals>" not in kind.__qualname__:  # a class made in a function may be one of
            _getters[kind] = getters  # many, each to be freed: looked up again instead
    getter = getters.get(name) if getters else None
    if getter is not None:
        if (converted := convert(getter)) is not None:
            return converted(value)
        if is_model(value):  # `model.calls`: it counts the calls made so far
            _settle_model_calls(value, f".{name}", sys._getframe(1))
    return project(value, name)


# per module-level class, its properties' getters (such classes are few, and live as
# long as their modules: a plain dict is the cheapest lookup on every attribute read)
_getters: dict[type, dict[str, Any]] = {}


def _user_getters(kind: type) -> dict[str, Any]:
    found = {}
    for klass in reversed(kind.__mro__):
        for name, member in vars(klass).items():
            if type(member) is property and type(member.fget) is types.FunctionType:
                found[name] = member.fget
            else:
                found.pop(name, None)
    return found


def _shallow(fn: Any, value: Any, frame: types.FrameType) -> Any:
    """`value` itself resolved (not its items); a placeholder stops a trace."""
    kind = type(value)
    if kind is Symbol:
        _stop(value, f"passed to {fn.__name__}()")
    return _wait(value, frame) if kind is LazyResult else value


_RECORD_METHODS = frozenset({"_replace", "_make"})  # a named tuple's: they store values


def _owner_type(owner: Any) -> Any:
    return owner if isinstance(owner, type) else type(owner)


def _is_record_type(fn: Any) -> bool:
    """A dataclass or named tuple class: it stores its arguments, as a container does."""
    return isinstance(fn, type) and (
        dataclasses.is_dataclass(fn) or (issubclass(fn, tuple) and hasattr(fn, "_fields"))
    )


def _call_operator(op: Operator, args: Any, kwargs: Any) -> Any:
    """Operators take lazy arguments; a user's composite runs its rewritten `forward`
    (in a trace, the tracer does that: `rewritten_forward`)."""
    while type(op).__name__ == "JittedOperator":  # jit(instance) used inside a jitted body
        op = op.operator
    handler = current_call_handler()
    if isinstance(handler, _Dispatcher):  # a dynamic or serial run's
        if handler.kind(op).composite:  # memoised per run
            return rewritten_forward(op)(*args, **kwargs)
        if type(op).__call__ is _OPERATOR_CALL:  # what `op(...)` would do, one frame less
            return handler(op, args, kwargs)
    return op(*args, **kwargs)


# module-level Operator classes met by `call` (an `isinstance` against the ABC costs
# several lookups); a class made in a function is asked each time, so it can be freed
_OPERATOR_TYPES: set[type] = set()


def _is_operator(fn: Any, kind: type) -> bool:
    if issubclass(kind, Operator):
        if "<locals>" not in kind.__qualname__:
            _OPERATOR_TYPES.add(kind)
        return True
    return isinstance(fn, Operator)  # a proxy answers for what it stands for: asked each time


_OPERATOR_CALL = Operator.__call__


def rewritten_forward(op: Operator) -> Callable[..., Any]:
    """`op.forward`, rewritten where its source allows."""
    forward = type(op).forward
    converted = convert(forward) if type(forward) is types.FunctionType else None
    return op.forward if converted is None else types.MethodType(converted, op)


def _real(fn: Any, values: Any, frame: types.FrameType) -> Any:
    """`values` for a callable that needs real ones; in a trace, a placeholder stops it."""
    handler = current_call_handler()
    if isinstance(handler, Tracer):
        symbol = first_symbol(values)
        if symbol is not None:
            name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
            _stop(symbol, f"passed to {name}()")
        if isinstance(values, tuple):  # `", ".join(ask(q) for q in qs)`: the items are
            values = tuple(  # only seen as the callee pulls them
                _symbol_free(fn, v) if type(v) in _ITERATORS else v for v in values
            )
        return values
    if isinstance(values, tuple):
        kind = type(fn)
        drain = (kind is _BUILTIN_FUNCTION or kind is type) and fn in _CONSUMERS
        drain = drain or (kind is _BUILTIN_METHOD and _is_join(fn))
        values = tuple(
            (_drained(v, frame) if drain else _resolving(v, frame)) if type(v) in _ITERATORS else v
            for v in values
        )
    out = _resolve_deep(values, frame)
    return out if out is values else _owned(values, out)


def _owned(values: Any, out: Any) -> Any:
    """`out` (`values` resolved), with each list, dict or deque argument passed as the body's
    own object, its pending results replaced by their values in it: library code may change
    an argument in place (`random.shuffle(xs)`, `heapq.heapify(xs)`, `rng.shuffle(xs)`),
    and a copy would leave the body's list as it was."""
    if type(values) is dict:  # keyword arguments
        return {k: _own(values[k], v) for k, v in out.items()}
    return tuple(_own(a, b) for a, b in zip(values, out, strict=True))


def _own(given: Any, resolved: Any) -> Any:
    if resolved is given or type(given) not in _IN_PLACE:
        return resolved
    settle_in_place(given)
    return resolved if _lazies(given) else given  # nested deeper than it settles: a copy


_IN_PLACE = frozenset({list, dict, deque})


def _store_target(target: Any, value: Any) -> Any:
    """`target` of `target[k] = value` or `target.name = value` in rewritten code (evaluated
    after `value`, as Python does). A list, dict or deque (subclasses too), an object of
    the user's and a library object that only holds attributes (`SimpleNamespace`) keep a
    pending result, settled when the body returns (`_stores.owner`); a library object
    with its own `__setitem__` (a NumPy array, a DataFrame) is library code taking the
    value, which would reject the proxy or keep it: it gets the value, as a call does."""
    if type(value) in _PLAIN:
        return target
    kind = type(target)
    keeps = _keeps_results.get(kind)
    if keeps is None:
        keeps = _keeps_results[kind] = _keeps(kind)
    return owner(target, value) if keeps else _ResolvingStore(target)


def _keeps(kind: type) -> bool:
    if kind is LazyResult or kind is Symbol or issubclass(kind, (list, dict, deque)):
        return True  # (a pending or traced target: the store waits for, or stops at, it)
    module = sys.modules.get(getattr(kind, "__module__", None) or "")
    file = getattr(module, "__file__", None)
    library = file is None or _is_library(file)
    return not library or getattr(kind, "__setitem__", None) is None


_keeps_results: dict[type, bool] = {}


class _ResolvingStore:
    """Stands in for a library object as the target of one store: the value it is given
    is resolved first (in a trace, a placeholder stops the trace)."""

    __slots__ = ("target",)

    def __init__(self, target: Any):
        object.__setattr__(self, "target", target)

    def __setitem__(self, key: Any, value: Any) -> None:
        target = object.__getattribute__(self, "target")
        target[key] = _real(type(target).__setitem__, (value,), sys._getframe(1))[0]

    def __setattr__(self, name: str, value: Any) -> None:
        target = object.__getattribute__(self, "target")
        setattr(target, name, _real(setattr, (value,), sys._getframe(1))[0])


def _symbol_free(fn: Any, items: Any) -> Any:
    """An iterator argument in a trace: its items as the callee pulls them, the trace
    stopped at the first that holds a placeholder (the callee would get the placeholder,
    and `str.join` would raise `TypeError` where a stop lets the call run dynamically)."""
    for item in items:
        symbol = first_symbol(item)
        if symbol is not None:
            name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
            _stop(symbol, f"passed to {name}()")
        yield item


def _is_join(method: Any) -> bool:
    """`", ".join`, `b"".join`."""
    return type(method.__self__) in (str, bytes) and method.__name__ == "join"


def _resolving(items: Any, frame: types.FrameType) -> Any:
    """An iterator argument whose items are resolved as the callee pulls them (`any()` may
    stop early, so the items must not all be made up front)."""
    for item in items:
        yield _resolve_deep(item, frame)


def _drained(items: Any, frame: types.FrameType) -> list[Any]:
    """Every item of an iterator argument that the callee consumes to its end, resolved
    once all are made (`", ".join(ask(q) for q in qs)` overlaps its calls)."""
    made: list[Any] = []
    try:
        for item in items:
            made.append(item)
    except BaseException:
        _resolve_deep(made, frame)  # a call that failed first raises first, as plainly
        raise
    return _resolve_deep(made, frame)


# --- the entry point and explanations --------------------------------------------------------


def entry(fn: Callable[..., Any]) -> Callable[..., Any]:
    """What runs for the jitted body `fn`: its rewritten form where there is one."""
    if _operator_call(fn):
        op, bound = fn.args[0], fn.args[1:]  # a jitted operator: `Operator.__call__(op, ...)`
        return functools.partial(_body, call, op, *bound, **fn.keywords)
    if type(fn) is types.FunctionType:  # the common body: what `call(fn, ...)` would run
        converted = convert(fn)
        return fn if converted is None else functools.partial(_body, _raw_call, converted)
    target = fn.func if isinstance(fn, functools.partial) else fn
    if type(target) is types.MethodType:
        target = target.__func__
    if type(target) is types.FunctionType and convert(target) is not None:
        return functools.partial(_body, call, fn)
    return fn


def _body(caller: Any, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
    """The rewritten body's run: `caller(fn, ...)`, then the pending results it stored
    where they may outlive the run settled, or a trace's placeholders there checked
    (`_stores`)."""
    try:
        out = caller(fn, *args, **kwargs)
    except BaseException:
        body_failed()
        raise
    body_returned(out)
    return out


def _operator_call(fn: Any) -> bool:
    """`fn` is `partial(Operator.__call__, op)`: how jit holds a jitted operator's body."""
    return (
        isinstance(fn, functools.partial)
        and bool(fn.args)
        and isinstance(fn.args[0], Operator)
        and getattr(fn.func, "__name__", "") == "__call__"
    )


def describe(fn: Callable[..., Any]) -> str:
    """Which path runs `fn`'s body in a dynamic run, and why."""
    target = fn
    while isinstance(target, functools.partial):
        target = target.func
    if isinstance(target, Operator):
        target = type(target).forward
    if type(target) is types.MethodType:
        target = target.__func__
    if _operator_call(fn):
        target = type(fn.args[0]).forward
    serial = _serial.get(_key(fn))
    note = f"\nno overlap: {serial}" if serial else ""
    if type(target) is not types.FunctionType:
        why = f"{type(target).__name__} has no source"
        return f"body runs as written (LazyResult proxies): {why}{note}"
    if convert(target) is not None:
        return (
            "body rewritten: leaf results are resolved where the code uses them "
            f"(f-strings, C functions, tests, operators, try bodies){note}"
        )
    return f"body runs as written (LazyResult proxies): {_why_not[target.__code__]}{note}"


def warn_if_serial(fn: Callable[..., Any], dispatcher: _Dispatcher) -> str | None:
    """One `logging` warning per function when ≥ 2 leaf calls ran and none overlapped."""
    run = dispatcher.run
    dispatched = len(run.nodes)
    if dispatched < 2 or run.peak > 1 or isinstance(run.executor, InlineExecutor):
        return None
    key = _key(fn)
    if key in _serial:  # warned already: the note is kept for explain_jit_selection
        return _serial[key]
    # a chain of calls passing results on cannot overlap; a wait followed by a call can
    forced = [(node, where) for node, where, before in dispatcher.forced if before < dispatched]
    if not forced:
        return None
    lines = "; ".join(f"{node} forced at {file}:{line}" for node, (file, line) in forced[:8])
    note = (
        f"jit: {dispatched} leaf calls ran one at a time (none overlapped): the body "
        f"waited for a result before making the next call ({lines}). If the calls are "
        "independent, make them all before using any result; see docs/sharp-bits.md"
    )
    with _lock:
        first = key not in _serial
        _serial[key] = note
    if first:
        logger.warning("%s: %s", getattr(fn, "__qualname__", repr(fn)), note)
    return note


def _key(fn: Any) -> Any:
    """One key per function, however jit holds it (a function, a partial, a method)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    fn = getattr(fn, "__func__", fn)
    return getattr(fn, "__code__", fn)


_serial: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()  # warned once


# --- conversion ------------------------------------------------------------------------------

_lock = threading.Lock()
# rewritten code per code object, and why not where there is none
_codes: weakref.WeakKeyDictionary[types.CodeType, types.CodeType | None] = (
    weakref.WeakKeyDictionary()
)
_why_not: weakref.WeakKeyDictionary[types.CodeType, str] = weakref.WeakKeyDictionary()
_functions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_HELPERS = {
    _R: _r, _RR: _rr, _RET: _ret, _CALL: call, _TRY_CALL: _try_call, _WITH_CALL: _with_call,
    _MARK: _mark, _SETTLE: _settle, _SETTLED: _settled, _ATTR: _attr, _STORED: stored,
    _STORED_GLOBAL: stored_global, _STORED_CELL: stored_cell, _OWNER: _store_target,
    _ESCAPE: _escape, _ESCAPING: Escaping, _ANY_ERROR: BaseException,
}  # fmt: skip
_HELPER_NAMES = frozenset(_HELPERS)


def convert(fn: types.FunctionType) -> types.FunctionType | None:
    """`fn` with its code rewritten (`None`: run it as written), cached per function."""
    if getattr(fn, "__xcs_rewritten__", False) or not _HELPER_NAMES.isdisjoint(
        fn.__code__.co_freevars
    ):  # rewritten, or defined in rewritten code (a nested function, a lambda)
        return fn
    found = _functions.get(fn, _MISSING)
    if found is not _MISSING:
        return found
    code = fn.__code__
    with _lock:
        if code not in _codes:
            _codes[code] = _rewrite_code(fn)
        new_code = _codes[code]
        converted = None if new_code is None else _rebind(fn, new_code)
        _functions[fn] = converted
    return converted


_MISSING = object()


def _rebind(fn: types.FunctionType, code: types.CodeType) -> types.FunctionType:
    """A function running `code` with `fn`'s globals, closure cells, defaults and name."""
    cells = dict(zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=True))
    for name, helper in _HELPERS.items():
        cells[name] = types.CellType(helper)
    closure = tuple(cells[name] for name in code.co_freevars)
    new = types.FunctionType(code, fn.__globals__, fn.__name__, fn.__defaults__, closure)
    new.__kwdefaults__ = fn.__kwdefaults__
    new.__qualname__ = fn.__qualname__
    new.__dict__.update(fn.__dict__)
    new.__xcs_rewritten__ = True  # type: ignore[attr-defined]
    return new


def _rewrite_code(fn: types.FunctionType) -> types.CodeType | None:
    code = fn.__code__
    why = _why_not_rewritten(fn)
    if why is None:
        try:
            return _compile(fn)
        except (OSError, TypeError, SyntaxError, ValueError) as exc:
            why = f"its source could not be rewritten ({type(exc).__name__}: {exc})"
    _why_not[code] = why
    return None


def _why_not_rewritten(fn: types.FunctionType) -> str | None:
    code = fn.__code__
    if _is_library(code.co_filename):
        return f"{fn.__qualname__} is library code (or has no source file: {code.co_filename})"
    if code.co_flags & _NOT_REWRITTEN:
        return "a coroutine function"
    return None


def _compile(fn: types.FunctionType) -> types.CodeType:
    code = fn.__code__
    if code.co_name == "<lambda>":
        return _compiled(code, _Rewriter().visit(_lambda_node(code)), 1)
    # the code object, not `fn`: `inspect` follows `__wrapped__`, so a decorator's wrapper
    # made with `functools.wraps` would be read as the function it wraps
    lines, first = inspect.getsourcelines(code)
    tree = ast.parse(textwrap.dedent("".join(lines)))
    func = tree.body[0]
    if not isinstance(func, ast.FunctionDef) or func.name != code.co_name:
        raise ValueError("the source does not start with the function's definition")
    func.decorator_list = []
    return _compiled(code, _Rewriter().visit(func), first)


def _lambda_node(code: types.CodeType) -> ast.Lambda:
    """The `lambda` expression `code` was compiled from, found in its file: on its first
    line, with its parameters and, where several match, where its body starts."""
    tree = ast.parse("".join(linecache.getlines(code.co_filename)))
    flags = code.co_flags
    count = code.co_argcount + code.co_kwonlyargcount
    count += bool(flags & inspect.CO_VARARGS) + bool(flags & inspect.CO_VARKEYWORDS)
    params = code.co_varnames[:count]
    found = [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Lambda) and node.lineno == code.co_firstlineno
        and _parameters(node.args) == params
    ]  # fmt: skip
    if len(found) > 1:
        starts = {(p[0], p[2]) for p in code.co_positions()}
        found = [n for n in found if (n.body.lineno, n.body.col_offset) in starts]
    if len(found) != 1:
        raise ValueError("the lambda could not be told apart from others on its line")
    return found[0]


def _parameters(args: ast.arguments) -> tuple[str, ...]:
    """Parameter names in `co_varnames` order: positional, keyword-only, `*`, `**`."""
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    names += [a.arg for a in (args.vararg, args.kwarg) if a is not None]
    return tuple(names)


def _compiled(code: types.CodeType, func: ast.FunctionDef | ast.Lambda, first: int) -> Any:
    """The code object of the rewritten `func` (source lines from `first`)."""
    # a factory whose locals are the original free variables and the helpers, so the
    # rewritten function's free variables are cells we can hand it (`_rebind`)
    names = [*code.co_freevars, *_HELPERS]
    prefix: list[ast.stmt] = []
    define: list[ast.stmt] = [ast.Return(func)]
    if isinstance(func, ast.FunctionDef):
        # a recursive call names the function: a global, unless it was a closure variable
        prefix = [] if func.name in code.co_freevars else [ast.Global([func.name])]
        define = [func, ast.Return(ast.Name(func.name, ast.Load()))]
    factory = ast.FunctionDef(
        name="__xcs_factory",
        args=ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[]),
        body=[*prefix, *[_assign(name, ast.Constant(None)) for name in names], *define],
        decorator_list=[],
        returns=None,
    )
    module = ast.Module(body=[factory], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, first - 1)
    compiled = compile(module, code.co_filename, "exec")
    factory_code = next(c for c in compiled.co_consts if isinstance(c, types.CodeType))
    return next(
        c for c in factory_code.co_consts
        if isinstance(c, types.CodeType) and c.co_name == code.co_name
    )  # fmt: skip


def _assign(name: str, value: ast.expr) -> ast.Assign:
    return ast.Assign(targets=[ast.Name(name, ast.Store())], value=value)


# --- the AST rewrite ---------------------------------------------------------------------------


def _wrap(helper: str, node: ast.expr) -> ast.expr:
    if isinstance(node, ast.Constant):
        return node
    return ast.copy_location(ast.Call(ast.Name(helper, ast.Load()), [node], []), node)


class _Rewriter(ast.NodeTransformer):
    """Resolve every use of a value; see the table in the module docstring."""

    def __init__(self) -> None:
        # the enclosing `try` and `with` bodies: (mark variable, the `with` statement's
        # context manager variables, or `None` for a `try`)
        self._tries: list[tuple[str, list[str] | None]] = []
        self._count = 0
        # names the function declares `global`, and those and its `nonlocal` names
        self._globals: frozenset[str] = frozenset()
        self._outer: frozenset[str] = frozenset()

    def use(self, node: ast.expr | None) -> Any:
        return None if node is None else _wrap(_R, self.visit(node))

    def use_all(self, node: ast.expr | None) -> Any:
        return None if node is None else _wrap(_RR, self.visit(node))

    # expressions: operands are uses
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.ctx, ast.Load):  # reading a field of a pending result waits later
            read = ast.Call(
                ast.Name(_ATTR, ast.Load()), [self.visit(node.value), ast.Constant(node.attr)], []
            )
            return ast.copy_location(read, node)
        node.value = self.use(node.value)
        return node

    def visit_Subscript(self, node: ast.Subscript) -> ast.AST:
        node.value = self.use(node.value)
        node.slice = self._index(node.slice)
        return node

    def _index(self, node: ast.expr) -> ast.expr:
        if isinstance(node, ast.Slice):
            node.lower, node.upper, node.step = map(self.use, (node.lower, node.upper, node.step))
            return node
        if isinstance(node, ast.Tuple):
            node.elts = [self._index(e) for e in node.elts]
            return node
        return self.use(node)

    def visit_BinOp(self, node: ast.BinOp) -> ast.AST:
        node.left, node.right = self.use(node.left), self.use(node.right)
        return node

    def visit_UnaryOp(self, node: ast.UnaryOp) -> ast.AST:
        node.operand = self.use(node.operand)
        return node

    def visit_BoolOp(self, node: ast.BoolOp) -> ast.AST:
        node.values = [self.use(v) for v in node.values]
        return node

    def visit_Compare(self, node: ast.Compare) -> ast.AST:
        node.left = self.use(node.left)
        node.comparators = [self.use(c) for c in node.comparators]
        return node

    def visit_IfExp(self, node: ast.IfExp) -> ast.AST:
        node.test = self.use(node.test)
        node.body, node.orelse = self.visit(node.body), self.visit(node.orelse)
        return node

    def visit_FormattedValue(self, node: ast.FormattedValue) -> ast.AST:
        node.value = self.use_all(node.value)
        if node.format_spec is not None:
            node.format_spec = self.visit(node.format_spec)
        return node

    def visit_Starred(self, node: ast.Starred) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            node.value = self.use(node.value)
        return node

    def visit_Dict(self, node: ast.Dict) -> ast.AST:
        node.keys = [self.use(k) for k in node.keys]  # hashed; `None` is a `**` entry
        node.values = [self.visit(v) for v in node.values]
        return node

    def visit_Set(self, node: ast.Set) -> ast.AST:
        node.elts = [self.use(e) for e in node.elts]
        return node

    def visit_SetComp(self, node: ast.SetComp) -> ast.AST:
        node.generators = [self.visit(g) for g in node.generators]
        node.elt = self.use(node.elt)
        return node

    def visit_DictComp(self, node: ast.DictComp) -> ast.AST:
        node.generators = [self.visit(g) for g in node.generators]
        node.key, node.value = self.use(node.key), self.visit(node.value)
        return node

    def visit_comprehension(self, node: ast.comprehension) -> ast.AST:
        node.iter = self.use(node.iter)
        node.ifs = [self.use(i) for i in node.ifs]
        return node

    def visit_Lambda(self, node: ast.Lambda) -> ast.AST:
        node.body = _wrap(_RET, self.visit(node.body))  # called by code we do not see
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        if isinstance(func, ast.Name) and func.id in _FRAME_BUILTINS:
            node.args = [self.use_all(a) for a in node.args]
            return node
        args = [self.visit(a) for a in node.args]  # an operator may take them lazily
        keywords = []
        for kw in node.keywords:
            kw.value = self.visit(kw.value) if kw.arg is not None else self.use(kw.value)
            keywords.append(kw)
        new = ast.Call(ast.Name(_CALL, ast.Load()), [self.visit(func), *args], keywords)
        if any(managers is None for _, managers in self._tries):  # in a try body, calls wait
            new.func = ast.Name(_TRY_CALL, ast.Load())
        elif self._tries:  # in a `with` body, they wait where a manager may see errors
            new.func = ast.Name(_WITH_CALL, ast.Load())
            every = [_load(m) for _, managers in self._tries for m in managers or ()]
            new.args.insert(0, ast.Tuple(every, ast.Load()))
        return ast.copy_location(new, node)

    # statements: tests, iteration, unpacking, `with`, `raise` are uses
    def visit_Assign(self, node: ast.Assign) -> ast.AST:
        node.targets = [self.visit(t) for t in node.targets]
        if any(isinstance(t, ast.Tuple | ast.List) for t in node.targets):
            node.value = self.use(node.value)  # unpacked: each item is used
            return node
        node.value = self.visit(node.value)
        stores = False
        for target in node.targets:
            if isinstance(target, ast.Subscript | ast.Attribute):
                # `get_store()[k] = v`: the owner, evaluated once where Python evaluates
                # it (after `v`), is noted before the store, with `v` bound by the walrus
                target.value = _helper(_OWNER, target.value, _load(_VALUE))
                stores = True
            elif isinstance(target, ast.Name) and target.id in self._outer:
                node.value = self._store_name(target.id, node.value)
        if stores:
            node.value = ast.NamedExpr(ast.Name(_VALUE, ast.Store()), node.value)
        return node

    def visit_AnnAssign(self, node: ast.AnnAssign) -> ast.AST:
        if node.value is None:  # a declaration: nothing is stored
            return node
        assign = ast.copy_location(ast.Assign(targets=[node.target], value=node.value), node)
        return self.visit_Assign(assign)  # in a body the annotation is not evaluated

    def visit_AugAssign(self, node: ast.AugAssign) -> ast.AST:
        target = node.target
        node.target = self.visit(target)
        node.value = self.use(node.value)
        if isinstance(target, ast.Subscript | ast.Attribute):  # `self.history += [reply]`:
            # the owner is evaluated before `v` here, so the walrus binds it for the note
            target.value = ast.NamedExpr(ast.Name(_VALUE, ast.Store()), target.value)
            node.value = _helper(_STORED, node.value, _load(_VALUE))
        elif isinstance(target, ast.Name) and target.id in self._outer:  # `LOG += [x]`
            node.value = self._store_name(target.id, node.value)
        return node

    def _store_name(self, name: str, value: ast.expr) -> ast.expr:
        """`value` as assigned to a name that outlives the call: a `global` (its module's
        slot is noted), or a `nonlocal` (its cell, read from a lambda sharing it)."""
        if name in self._globals:
            return _helper(_STORED_GLOBAL, value, ast.Constant(name))
        cell = ast.Lambda(_NO_ARGS, _load(name))
        return _helper(_STORED_CELL, value, cell)

    def visit_If(self, node: ast.If) -> ast.AST:
        node.test = self.use(node.test)
        node.body, node.orelse = self._block(node.body), self._block(node.orelse)
        return node

    def visit_While(self, node: ast.While) -> ast.AST:
        return self.visit_If(node)  # type: ignore[arg-type]

    def visit_For(self, node: ast.For) -> ast.AST:
        node.target = self.visit(node.target)
        node.iter = self.use(node.iter)
        node.body, node.orelse = self._block(node.body), self._block(node.orelse)
        return node

    def visit_With(self, node: ast.With) -> Any:
        self._count += 1
        mark, managers = f"__xcs_m{self._count}", []
        for i, item in enumerate(node.items):  # each manager is kept: does it see errors?
            managers.append(f"__xcs_c{self._count}_{i}")
            named = ast.NamedExpr(ast.Name(managers[-1], ast.Store()), self.use(item.context_expr))
            item.context_expr = ast.copy_location(named, item.context_expr)
        self._tries.append((mark, managers))
        node.body = [_escaping_guard([*self._block(node.body), self._settle_stmt()], mark, node)]
        self._tries.pop()
        start = _assign(mark, ast.Call(ast.Name(_MARK, ast.Load()), [], []))
        return [ast.copy_location(start, node), node]

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        node.test, node.msg = self.use(node.test), self.use_all(node.msg)
        return node

    def visit_Raise(self, node: ast.Raise) -> ast.AST:
        node.exc, node.cause = self.use(node.exc), self.use(node.cause)
        return node

    def visit_Match(self, node: ast.Match) -> ast.AST:
        node.subject = self.use(node.subject)
        for case in node.cases:
            case.guard = self.use(case.guard)
            case.body = self._block(case.body)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        return node  # a class body is not the function's code path

    def visit_FunctionDef(self, node: ast.FunctionDef) -> ast.AST:
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.args = self.visit(node.args)
        outer, self._tries = self._tries, []  # a nested function's try bodies are its own
        names = self._globals, self._outer
        self._globals = _declared(node.body, ast.Global)
        self._outer = self._globals | _declared(node.body, ast.Nonlocal)
        node.body = self._block(node.body)
        self._tries, (self._globals, self._outer) = outer, names
        return node

    def visit_Return(self, node: ast.Return) -> ast.AST:
        value = self.visit(node.value) if node.value is not None else ast.Constant(None)
        if self._tries:  # returning from a try body: its calls' errors belong to it
            mark, managers = self._tries[-1]
            args = [_load(mark), value, *map(_load, managers or ())]
            value = ast.Call(ast.Name(_SETTLED, ast.Load()), args, [])
        node.value = value
        return node

    def visit_Break(self, node: ast.Break) -> Any:
        return self._settle_before(node)

    def visit_Continue(self, node: ast.Continue) -> Any:
        return self._settle_before(node)

    def _settle_before(self, node: ast.stmt) -> Any:
        if not self._tries:
            return node
        return [self._settle_stmt(), node]

    def _settle_stmt(self) -> ast.stmt:
        """`settle(mark, *managers)` for the innermost `try` or `with` body."""
        mark, managers = self._tries[-1]
        args = [_load(mark), *map(_load, managers or ())]
        return ast.Expr(ast.Call(ast.Name(_SETTLE, ast.Load()), args, []))

    def visit_Try(self, node: ast.Try) -> Any:
        self._count += 1
        mark = f"__xcs_m{self._count}"
        self._tries.append((mark, None))
        node.body = [*self._block(node.body), self._settle_stmt()]
        self._tries.pop()
        for handler in node.handlers:
            handler.type = self.use(handler.type)
            handler.body = self._block(handler.body)
        node.orelse = self._block(node.orelse)
        node.finalbody = self._block(node.finalbody)
        if node.handlers and isinstance(node, ast.Try):
            _guard_handlers(node, mark)
        start = _assign(mark, ast.Call(ast.Name(_MARK, ast.Load()), [], []))
        return [ast.copy_location(start, node), node]

    visit_TryStar = visit_Try

    def _block(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            new = self.visit(stmt)
            out.extend(new if isinstance(new, list) else [new])
        return out


def _load(name: str) -> ast.Name:
    return ast.Name(name, ast.Load())


def _guard_handlers(node: ast.Try, mark: str) -> None:
    """`try: body except E: ...` becomes

        try:
            try: body
            except BaseException as e: escape(e, mark); raise
        except Escaping: raise
        except E: ...

    so a failure of a call made before the `try` began passes its handlers as plain
    Python's would never have seen it (`_escape`, `Escaping`)."""
    node.body = [_escaping_guard(node.body, mark, node)]
    passes = ast.ExceptHandler(_load(_ESCAPING), None, [ast.Raise()])
    node.handlers = [passes, *node.handlers]


def _escaping_guard(body: list[ast.stmt], mark: str, where: ast.AST) -> ast.stmt:
    """`body` in `try: ... except BaseException as e: escape(e, mark); raise`: what a
    `try` or `with` body raises goes through `_escape` before any handler or manager."""
    caught = ast.Name(_CAUGHT, ast.Load())
    check = ast.Expr(ast.Call(_load(_ESCAPE), [caught, _load(mark)], []))
    wrapper = ast.ExceptHandler(_load(_ANY_ERROR), _CAUGHT, [check, ast.Raise()])
    guard = ast.Try(body=body, handlers=[wrapper], orelse=[], finalbody=[])
    return ast.copy_location(guard, where)


def _declared(body: list[ast.stmt], kind: type[ast.Global | ast.Nonlocal]) -> frozenset[str]:
    """The names a function body declares `global` or `nonlocal` (`kind`; not its nested
    functions')."""
    names: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, kind):
            names.update(node.names)
        elif not isinstance(
            node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda | ast.ClassDef
        ):
            stack.extend(ast.iter_child_nodes(node))
    return frozenset(names)


def _helper(name: str, *args: ast.expr) -> ast.expr:
    return ast.Call(_load(name), list(args), [])


_NO_ARGS = ast.arguments(posonlyargs=[], args=[], kwonlyargs=[], kw_defaults=[], defaults=[])
