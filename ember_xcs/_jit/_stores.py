"""Pending results stored where they outlive the call: settled, or a trace stopped.

The rewritten body returns real values (`_rewrite`), but a body can also *store* a leaf
result where the caller keeps it: a list it was given (`out.append(answer)`), a global
cache (`CACHE[q] = answer`, `get_store()[q] = answer`), an operator's history
(`self.history.append(reply)`), a field of anything (`self.items[0].x = answer`), a class
attribute, a `global` or `nonlocal` name (`last = answer`, `LOG += [answer]`). Nothing
uses the value there before the call returns, so nothing would wait for it.

**Where stores are found.** Every store in the user's code is one of a few statements
and calls, and the rewrite marks each: the owner of `x[k] = v`, `x.f = v`, `x[k] += v`,
`x.f: T = v` (whatever expression `x` is, evaluated once, where Python evaluates it:
`owner`, `stored`), the module slot of a `global` name and the cell of a `nonlocal` one
(`stored_global`, `stored_cell`: a lambda reading the name shares its cell), and the
storing methods of lists, deques and dicts (`append`, `extend`, `insert`, `update`,
`setdefault`, `appendleft`, from `call`). Each helper checks first whether `v` can hold a
pending result at all (`type(v)` in `_PLAIN`: an identity check), so a store of a string
or a number pays one call and one set lookup. The alternative, walking everything the
body's globals, closure cells and arguments reach when it returns, would find the same
stores but cost every call a walk of the operators and models a body holds (the router
benchmark's body reaches hundreds of objects and stores nothing); marking the statement
costs only the bodies that store.

- **A dynamic run** notes each owner a pending result was stored into (`note_store`), and
  when the body returns replaces every pending result in them, in place, by its value
  (`body_returned`; nested lists, dicts and objects `_STORE_DEPTH` deep; a class's
  attributes with `setattr`, a cell's contents through `cell_contents`). A call that
  failed unseen raises there, naming its node, as the end of the run would.
- **A trace** cannot store anything a replayed plan would store again: a placeholder
  left in an owner that outlives the call (one the body did not create, or created and
  also kept elsewhere, and that is not part of what it returns) stops the trace. Each
  owner's contents were copied when the trace first stored into it, and are put back
  (`_snapshot`), so the dynamic run that follows starts from the state the call began
  with, `xs[0] = v` and `d[k] = v` over an existing entry included. "Kept elsewhere" is
  read from CPython's reference counts, measured against a fresh object held the same way.
  What a trace returns is checked too: a generator or iterator (a plan would hand back
  the same one, used up, on every call) or a function whose closure holds a placeholder
  stops the trace, and so does a `functools` cache that kept a placeholder (its cache is
  cleared: its entries cannot be reached one by one).
"""

from __future__ import annotations

import linecache
import sys
import types
from collections import deque
from typing import Any

from .._errors import with_article
from ..operators import current_call_handler
from ._containers import ATOMS, open_container, resolve_attributes
from ._dynamic import LazyResult, _Dispatcher, _lazies
from ._symbols import StopReason, Symbol, TraceStop, first_symbol, user_frame
from ._tracer import Tracer

__all__ = [
    "UNKNOWN",
    "body_failed",
    "body_returned",
    "cache_kept",
    "note_store",
    "owner",
    "settle_in_place",
    "stored",
    "stored_cell",
    "stored_global",
]

UNKNOWN = object()  # `note_store`'s value when a method stored values not known here
_MISSING = object()
# values that are not, and cannot hold, a pending result or a placeholder
_PLAIN = ATOMS | {types.FunctionType, types.BuiltinFunctionType, types.BuiltinMethodType, type,
                  range}  # fmt: skip


def stored(value: Any, owner: Any) -> Any:
    """`owner[key] = value` or `owner.name = value` in rewritten code: where `value` holds a
    pending result (or a trace's placeholder), `owner` is noted (`note_store`)."""
    if type(value) not in _PLAIN:
        note_store(owner, value, sys._getframe(1))
    return value


def owner(target: Any, value: Any) -> Any:
    """`target` of `target[key] = value` or `target.name = value` in rewritten code
    (evaluated after `value`, as Python does), noted where `value` holds a pending result."""
    if type(value) not in _PLAIN:
        note_store(target, value, sys._getframe(1))
    return target


def stored_global(value: Any, name: str) -> Any:
    """`name = value` where `name` is declared `global`: the module's slot is noted."""
    if type(value) not in _PLAIN:
        frame = sys._getframe(1)
        note_store(_GlobalSlot(frame.f_globals, name), value, frame)
    return value


def stored_cell(value: Any, reader: types.FunctionType) -> Any:
    """`name = value` where `name` is declared `nonlocal`: its cell (shared by `reader`, a
    lambda reading the name) is noted."""
    if type(value) not in _PLAIN:
        note_store(_CellSlot(reader.__closure__[0]), value, sys._getframe(1))  # type: ignore[index]
    return value


class _GlobalSlot:
    """A module global the body assigned (`global last; last = ask(q)`)."""

    __slots__ = ("name", "space")

    def __init__(self, space: dict[str, Any], name: str):
        self.space, self.name = space, name

    def get(self) -> Any:
        return self.space.get(self.name, _MISSING)

    def set(self, value: Any) -> None:
        if value is _MISSING:
            self.space.pop(self.name, None)
        else:
            self.space[self.name] = value


class _CellSlot:
    """An enclosing function's variable the body assigned (`nonlocal last`)."""

    __slots__ = ("cell",)

    def __init__(self, cell: types.CellType):
        self.cell = cell

    def get(self) -> Any:
        try:
            return self.cell.cell_contents
        except ValueError:  # not assigned yet
            return _MISSING

    def set(self, value: Any) -> None:
        if value is _MISSING:
            del self.cell.cell_contents
        else:
            self.cell.cell_contents = value


_SLOTS = (_GlobalSlot, _CellSlot)


def note_store(owner: Any, value: Any, frame: types.FrameType) -> None:
    """`value` was stored into `owner` (`frame`: the user's line); `UNKNOWN`: the values
    a method stored are not known (`out.extend(generator)`). Called before the store."""
    handler = current_call_handler()
    if isinstance(handler, _Dispatcher):
        if value is not UNKNOWN and type(value) is not LazyResult and not _lazies(value):
            return
        held = handler.stores
        if held is None:
            handler.stores = [owner]
        elif held[-1] is not owner:
            held.append(owner)
    elif isinstance(handler, Tracer):
        if value is not UNKNOWN and first_symbol(value) is None:
            return
        if handler.stores is None:
            handler.stores = {}
        key = _key(owner)
        if key not in handler.stores:  # its contents before the trace first stored into it
            handler.stores[key] = (owner, _where(frame), _snapshot(owner))


def _key(owner: Any) -> Any:
    kind = type(owner)
    if kind is _GlobalSlot:
        return (id(owner.space), owner.name)
    return (id(owner.cell),) if kind is _CellSlot else id(owner)


def _taken(handler: Any) -> Any:
    """What the body stored where it outlives the call, now forgotten by its handler (a
    dynamic run's `_Dispatcher` or a `Tracer`: their `stores`)."""
    held, handler.stores = handler.stores, None
    return held


def _settle_stores(held: list[Any]) -> None:
    """Replace, in place, each pending result the body stored into a container or object
    (`note_store`) by its value; a failed call raises here, naming its node, as the end of
    the run would have."""
    done: set[int] = set()
    for owner in held:
        if id(owner) not in done:
            done.add(id(owner))
            _settle_in_place(owner, _STORE_DEPTH)


_STORE_DEPTH = 3  # levels of nested lists, dicts and objects looked into


def settle_in_place(value: Any) -> None:
    """Replace the pending results in the list, dict or deque `value` (nested ones too,
    `_STORE_DEPTH` deep) by their values, in place: it is the body's own object, and
    library code that gets it may change it in place (`_rewrite`)."""
    _settle_in_place(value, _STORE_DEPTH)


def _settle_in_place(value: Any, depth: int) -> None:
    kind = type(value)
    if kind in _SLOTS:
        item = value.get()
        new = _settled_item(item, depth)
        if new is not item:
            value.set(new)
    elif kind is list or kind is deque:
        for i, item in enumerate(value):
            new = _settled_item(item, depth)
            if new is not item:
                value[i] = new
    elif isinstance(value, dict):
        for key, item in list(value.items()):
            new = _settled_item(item, depth)
            if new is not item:
                value[key] = new
    elif isinstance(value, type):  # a class attribute: `setattr` keeps its lookups right
        for name, item in list(vars(value).items()):
            new = _settled_item(item, depth)
            if new is not item:
                setattr(value, name, new)
    elif kind not in ATOMS and kind is not types.ModuleType:
        resolve_attributes(value, lambda item: _settled_item(item, depth))


def _settled_item(item: Any, depth: int) -> Any:
    kind = type(item)
    if kind is LazyResult:
        return _value_of(item)
    if kind in _PLAIN or depth <= 0 or kind is types.ModuleType:
        return item
    if isinstance(item, tuple):  # immutable: a new one where it holds a pending result
        opened = open_container(item)
        if opened is None:
            return item
        items, rebuild = opened
        new = [_settled_item(x, depth - 1) for x in items]
        return item if all(a is b for a, b in zip(new, items, strict=True)) else rebuild(new)
    _settle_in_place(item, depth - 1)
    return item


def _value_of(lazy: LazyResult) -> Any:
    """`lazy`'s value; a failed call raises its node-naming error, as the run's end would
    have (the body never saw it), not the error as the leaf raised it (`resolve`)."""
    get = object.__getattribute__
    out = get(lazy, "_run").wait(get(lazy, "_index"))
    for name in get(lazy, "_attrs"):
        out = getattr(out, name)
    return out


def body_returned(out: Any) -> None:
    """The body returned `out`: settle a dynamic run's stores, or check a trace's."""
    handler = current_call_handler()
    if isinstance(handler, _Dispatcher):
        if handler.stores:  # the common body stores nothing: one attribute read
            _settle_stores(_taken(handler))
    elif isinstance(handler, Tracer):
        _check_trace_output(handler, out)
        _check_trace_stores(handler, out)


def body_failed() -> None:
    """The body raised: forget its stores; where a trace stored placeholders, what it
    stored into is put back as it was (the call falls back to another strategy, which
    must not see them)."""
    handler = current_call_handler()
    held = _taken(handler) if isinstance(handler, _Dispatcher | Tracer) else None
    if held and isinstance(handler, Tracer):
        _restore(held)


def cache_kept(cached: Any, out: Any) -> None:
    """A `functools` cache (`cached`) returned `out` in a trace: where `out` holds a
    placeholder the cache kept it, so the cache is cleared and the trace stops."""
    handler = current_call_handler()
    if isinstance(handler, Tracer) and first_symbol(out) is not None:
        cached.cache_clear()
        _stop_trace(
            handler,
            "a functools cache kept a leaf result (cleared: a replayed plan would not "
            "call it, and later calls would get the placeholder):",
            _where(sys._getframe(2)),
        )


def _stop_trace(tracer: Tracer, what: str, where: tuple[str, int] | None) -> None:
    file, line = where or (None, None)
    source = linecache.getline(file, line).strip() or None if file and line else None
    reason = StopReason("value", what, "a placeholder", file, line, source)
    tracer.note_stop(reason)
    raise TraceStop(reason)


def _where(frame: types.FrameType) -> tuple[str, int]:
    frame = user_frame(frame) or frame
    return frame.f_code.co_filename, frame.f_lineno


def _check_trace_output(tracer: Tracer, out: Any) -> None:
    """Stop the trace where what it returns cannot be replayed: a generator or iterator (a
    plan hands back the same object on every call, used up after the first) or a function
    whose closure or defaults hold a placeholder."""
    found = _unreplayable(out)
    if found is not None:
        held = _taken(tracer)
        if held:
            _restore(held)
        _stop_trace(tracer, found, None)


def _unreplayable(out: Any) -> str | None:
    stack, seen = [(out, _STORE_DEPTH)], set()
    while stack:
        item, left = stack.pop()
        kind = type(item)
        if kind in ATOMS or kind is Symbol or id(item) in seen or left < 0:
            continue
        seen.add(id(item))
        if kind is types.FunctionType:
            held = [c.cell_contents for c in item.__closure__ or () if _filled(c)]
            held += [*(item.__defaults__ or ()), *(item.__kwdefaults__ or {}).values()]
            if any(first_symbol(x) is not None for x in held):
                return (
                    "the function returns a function whose closure holds a leaf result, "
                    "which a replayed plan would hand back with its placeholder:"
                )
        elif hasattr(kind, "__next__") and not isinstance(item, type):
            return (
                f"the function returns {with_article(kind.__name__)} (an iterator), which a "
                "replayed plan would hand back used up on every later call:"
            )
        else:
            stack.extend((x, left - 1) for x in _held_by(item))
    return None


def _filled(cell: types.CellType) -> bool:
    try:
        cell.cell_contents  # noqa: B018 - an empty cell raises
    except ValueError:
        return False
    return True


def _check_trace_stores(tracer: Tracer, out: Any) -> None:
    """Stop the trace if it left a placeholder in a container or object that outlives the
    call (anything the body did not create, or created and kept elsewhere), and is not
    part of what it returns; each owner is put back as it was first, so the run that
    follows starts from where the call began."""
    held = _taken(tracer)
    if not held:
        return
    # an owner nothing else holds has as many references as a fresh one held the same
    # way (the interpreter's own count of them varies between versions)
    alone = _references({0: ([], ("", 0), None)})[0]
    alone_cell = _references({0: (_CellSlot(types.CellType()), ("", 0), None)})[0]
    counts = _references(held)
    returned = _reachable(out)
    escaped = None
    for key, (owner, where, _) in held.items():
        kind = type(owner)
        if kind is _GlobalSlot:
            outlives = True
        elif kind is _CellSlot:
            outlives = counts[key] > alone_cell
        else:
            outlives = counts[key] > alone
        if outlives and id(owner) not in returned and _holds_symbol(owner):
            escaped = where
            break
    if escaped is None:
        return
    _restore(held)
    _stop_trace(
        tracer,
        "a leaf result was stored where it outlives the call (an argument, a global, an "
        "operator's field), which a replayed plan would not do:",
        where=escaped,
    )


def _references(held: dict[Any, tuple[Any, Any, Any]]) -> dict[Any, int]:
    """Each owner's reference count (a cell's, for a `nonlocal` name)."""
    return {
        key: sys.getrefcount(owner.cell if type(owner) is _CellSlot else owner)
        for key, (owner, _, _) in held.items()
    }


def _reachable(value: Any, depth: int = _STORE_DEPTH + 1) -> set[int]:
    """The ids of the containers and objects in `value` (the body's return value)."""
    found: set[int] = set()
    stack = [(value, depth)]
    while stack:
        item, left = stack.pop()
        kind = type(item)
        if kind in _PLAIN or kind is Symbol or id(item) in found or left < 0:
            continue
        found.add(id(item))
        stack.extend((x, left - 1) for x in _held_by(item))
    return found


def _held_by(item: Any) -> Any:
    """What a container or an object holds, one level down, for the walks above."""
    if isinstance(item, list | tuple | set | frozenset | deque):
        return item
    if isinstance(item, dict):
        return item.values()
    if hasattr(item, "__dict__") and not isinstance(item, type | types.ModuleType):
        return vars(item).values()
    return ()


def _items_of(owner: Any) -> Any:
    if type(owner) in _SLOTS:
        return (owner.get(),)
    if isinstance(owner, list | deque):
        return owner
    if isinstance(owner, dict):
        return owner.values()
    if isinstance(owner, types.ModuleType) or not hasattr(owner, "__dict__"):
        return ()
    return vars(owner).values()


def _holds_symbol(owner: Any) -> bool:
    return any(first_symbol(item) is not None for item in _items_of(owner))


# --- putting back what a stopped trace stored -----------------------------------------------


def _snapshot(owner: Any) -> Any:
    """What puts `owner` back as it is now, called with `owner` (so it holds no reference
    to it, which would count as one kept elsewhere): its items (a list, deque or dict),
    its fields (an object or a class), its value (a global or a cell, with that value's
    contents); `None` for an object without `__dict__` (the run that follows assigns its
    fields again)."""
    kind = type(owner)
    if kind in _SLOTS:
        value = owner.get()
        inner = None if type(value) in _PLAIN else _snapshot(value)
        return lambda slot: (slot.set(value), inner and inner(value))
    if kind is list or kind is deque:
        items = list(owner)
        return lambda xs: (xs.clear(), xs.extend(items))
    if isinstance(owner, dict):
        entries = dict(owner)
        return lambda d: (d.clear(), d.update(entries))
    if isinstance(owner, types.ModuleType) or not hasattr(owner, "__dict__"):
        return None
    fields = dict(vars(owner))
    return lambda obj: _put_fields(obj, fields)


def _put_fields(owner: Any, fields: dict[str, Any]) -> None:
    now = vars(owner)
    for name in [n for n in now if n not in fields]:
        delattr(owner, name)
    for name, value in fields.items():
        if now.get(name, _MISSING) is not value:
            setattr(owner, name, value)


def _restore(held: dict[Any, tuple[Any, Any, Any]]) -> None:
    """Put back each owner a trace stored placeholders into, as it was before the first
    store (the last first: an owner noted later may sit inside one noted earlier)."""
    for owner, _, restore in reversed(held.values()):
        if restore is not None:
            restore(owner)
