"""Inert helpers: the user's functions that cannot reach an operator run as written.

Rewritten code (`_rewrite`) calls the user's own Python functions rewritten too, so a
helper can pass a pending result on to an operator without waiting for it. That costs a
`call()` per call the helper makes and a check per value it uses, about 1 µs each: a
ten-word bag-of-words helper makes ~100 calls (`text.lower()`, `split`, `sum`, `map`,
`ord`), and a retrieval step that embeds eight documents with it spent more time in the
rewrite than in its compiled numeric leaves (`benchmarks/RESULTS.md`, "Inert helpers").

A helper needs none of that when two things hold, and then runs as written:

- **its arguments are real values** (strings, numbers, `None`: `ATOMS`), so nothing in
  it is pending when it starts; and
- **it cannot call an operator**: every global name its code loads (its nested
  comprehensions and generators included) is, at this call, a builtin function or
  type, a C method of a plain value, a plain value (an atom, or a small container of
  atoms), a library module or a library's function (the standard library or an
  installed package, not ember_xcs: called with real values, library code returns real
  values), or another of the user's functions that passes this same test; it has no
  closure and no default that is not an atom, imports nothing, and reads no name by
  string (`eval`, `globals()`).

Then no pending result can appear inside it: results come only from operator calls and
from arguments. Running it as written gives exactly what the rewritten helper gives,
the plain function's answer. Anything else (a global that is an operator, a user's
class or module, a function that calls an operator, a lambda passed in) keeps the
rewritten path. The
code scan is done once per code object; the globals are looked at on every call, since
they can change. Reflection through a library (`sys.modules`, `gc`) is not followed:
a helper that reaches the user's operators that way must not be called with plain
values from a jitted body (none in the corpus does).
"""

from __future__ import annotations

import builtins
import dis
import os
import types
import weakref
from typing import Any

from ._containers import ATOMS
from ._symbols import _LIBRARY_DIRS, _PACKAGE_DIR

__all__ = ["inert"]

_SMALL = 64  # a global container is looked into only up to this size
_CONTAINERS = (list, tuple, set, frozenset)
_C = (
    types.BuiltinFunctionType,
    types.BuiltinMethodType,
    types.MethodDescriptorType,  # `str.upper`
    types.WrapperDescriptorType,
)
_UNKNOWN = frozenset({"IMPORT_NAME", "LOAD_NAME"})
# builtins that reach any name by a string
_REFLECTIVE = frozenset({"eval", "exec", "compile", "globals", "vars", "__import__"})
_BUILTINS = vars(builtins)
_MISSING = object()

# per code object: the global names it loads, or None when it may reach anything
_globals: weakref.WeakKeyDictionary[types.CodeType, frozenset[str] | None] = (
    weakref.WeakKeyDictionary()
)
_modules: dict[str, bool] = {}  # per module name: a library's (and not ember_xcs's)


def inert(fn: types.FunctionType, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """`fn(*args, **kwargs)` cannot call an operator; see the module docstring."""
    for value in args:
        if type(value) not in ATOMS:
            return False
    for value in kwargs.values():
        if type(value) not in ATOMS:
            return False
    if fn.__closure__ or not _atoms(fn.__defaults__) or fn.__kwdefaults__:
        return False
    names = _scanned(fn.__code__)
    if names is None:
        return False
    return _reaches_no_operator(fn, names, set())


def _reaches_no_operator(fn: types.FunctionType, names: frozenset[str], seen: set[Any]) -> bool:
    """Every global `fn` loads is plain; a user's function among them is checked the
    same way, so a helper may call another helper (`seen`: recursion)."""
    seen.add(fn.__code__)
    space = fn.__globals__
    for name in names:
        value = space.get(name, _MISSING)
        if value is _MISSING:
            value = _BUILTINS.get(name, _MISSING)
        if type(value) is types.FunctionType and not _library_file(value.__code__.co_filename):
            if value.__code__ in seen:
                continue
            if value.__closure__ or not _atoms(value.__defaults__) or value.__kwdefaults__:
                return False
            inner = _scanned(value.__code__)
            if inner is None or not _reaches_no_operator(value, inner, seen):
                return False
        elif not _plain_global(value):
            return False
    return True


def _scanned(code: types.CodeType) -> frozenset[str] | None:
    try:
        return _globals[code]
    except KeyError:
        names = _globals[code] = _scan(code)
        return names


def _atoms(values: tuple[Any, ...] | None) -> bool:
    return values is None or all(type(v) in ATOMS for v in values)


def _scan(code: types.CodeType) -> frozenset[str] | None:
    """The global names `code` and the code nested in it load; None if it imports or
    reads names by string (`eval`, `globals()`)."""
    names: set[str] = set()
    stack = [code]
    while stack:
        current = stack.pop()
        for instruction in dis.get_instructions(current):
            if instruction.opname in _UNKNOWN:
                return None
            if instruction.opname == "LOAD_GLOBAL":
                if instruction.argval in _REFLECTIVE:
                    return None
                names.add(instruction.argval)
        stack.extend(c for c in current.co_consts if type(c) is types.CodeType)
    return frozenset(names)


def _plain_global(value: Any) -> bool:
    kind = type(value)
    if kind in ATOMS:
        return True
    if isinstance(value, _C):  # a C function, or a C method of a plain value (not of a
        owner = getattr(value, "__self__", None)  # dict that may hold operators)
        return owner is None or type(owner) is types.ModuleType or type(owner) in ATOMS
    if kind is type:
        return value.__module__ == "builtins"
    if kind is types.FunctionType:  # a library's function (`from json import loads`)
        return _library_file(value.__code__.co_filename)
    if kind is types.ModuleType:
        return _library_module(value)
    if kind in _CONTAINERS or kind is dict:
        items = value.values() if kind is dict else value
        return len(value) <= _SMALL and all(type(v) in ATOMS for v in items)
    return False


def _library_module(module: types.ModuleType) -> bool:
    name = module.__name__
    known = _modules.get(name)
    if known is None:
        path = getattr(module, "__file__", None)
        if path is None:  # built into the interpreter (`sys`, `time`), or a namespace
            spec = getattr(module, "__spec__", None)  # package, which may be the user's
            known = spec is not None and spec.origin in ("built-in", "frozen")
        else:
            known = _library_file(path)
        _modules[name] = known
    return known


def _library_file(filename: str) -> bool:
    """The standard library's or an installed package's, and not ember_xcs's."""
    path = os.path.abspath(filename)
    return path.startswith(_LIBRARY_DIRS) and not path.startswith(_PACKAGE_DIR)
