"""Pending results stored where they outlive the call: settled, or a trace stopped.

The rewritten body returns real values (`_rewrite`), but a body can also *store* a leaf
result where the caller keeps it: a list it was given (`out.append(answer)`), a global
cache (`CACHE[q] = answer`), an operator's history (`self.history.append(reply)`), a
`global` name. Nothing uses the value there before the call returns, so nothing would
wait for it.

- **A dynamic run** notes each container or object a pending result was stored into
  (`note_store`: the storing methods of lists and dicts from `call`; `stored` and
  `stored_global` wrap `x[k] = v`, `x.f = v`, `x.f += v` and assignments to declared
  globals), and when the body returns replaces every pending result in them, in place,
  by its value (`body_returned`; nested lists, dicts and objects `_STORE_DEPTH` deep). A
  call that failed unseen raises there, naming its node, as the end of the run would.
- **A trace** cannot store anything a replayed plan would store again: a placeholder
  left in a container that outlives the call (one the body did not create, or created
  and also kept elsewhere, and that is not part of what it returns) stops the trace,
  after every placeholder it stored is taken back out, so the dynamic run that follows
  starts from the state the call began with. "Kept elsewhere" is read from CPython's
  reference counts, measured against a fresh list held the same way.
"""

from __future__ import annotations

import linecache
import sys
import types
from collections import deque
from typing import Any

from ..operators import current_call_handler
from ._containers import ATOMS, open_container, resolve_attributes
from ._dynamic import LazyResult, _Dispatcher, _lazies
from ._symbols import StopReason, Symbol, TraceStop, first_symbol, user_frame
from ._tracer import Tracer

__all__ = ["UNKNOWN", "body_failed", "body_returned", "note_store", "stored", "stored_global"]

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


def stored_global(value: Any, name: str) -> Any:
    """`name = value` where `name` is declared `global`: the module's slot is noted."""
    if type(value) not in _PLAIN:
        frame = sys._getframe(1)
        note_store(_GlobalSlot(frame.f_globals, name), value, frame)
    return value


class _GlobalSlot:
    """A module global the body assigned (`global last; last = ask(q)`), and its value
    before, which a stopped trace puts back."""

    __slots__ = ("before", "name", "space")

    def __init__(self, space: dict[str, Any], name: str):
        self.space, self.name = space, name
        self.before = space.get(name, _MISSING)


def note_store(owner: Any, value: Any, frame: types.FrameType) -> None:
    """`value` was stored into `owner` (`frame`: the user's line); `UNKNOWN`: the values
    a method stored are not known (`out.extend(generator)`)."""
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
        frame = user_frame(frame) or frame
        where = (frame.f_code.co_filename, frame.f_lineno)
        if handler.stores is None:
            handler.stores = []
        handler.stores.append((owner, where))


def _taken(handler: Any) -> list[Any] | None:
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


def _settle_in_place(value: Any, depth: int) -> None:
    kind = type(value)
    if kind is _GlobalSlot:
        item = value.space.get(value.name)
        new = _settled_item(item, depth)
        if new is not item:
            value.space[value.name] = new
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
    elif kind not in ATOMS and kind is not types.ModuleType and not isinstance(value, type):
        resolve_attributes(value, lambda item: _settled_item(item, depth))


def _settled_item(item: Any, depth: int) -> Any:
    kind = type(item)
    if kind is LazyResult:
        return _value_of(item)
    if kind in _PLAIN or depth <= 0:
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
            _settle_stores(_taken(handler))  # type: ignore[arg-type]
    elif isinstance(handler, Tracer):
        _check_trace_stores(handler, out)


def body_failed() -> None:
    """The body raised: forget its stores; a trace's placeholders are taken back out (the
    call falls back to another strategy, which must not see them)."""
    handler = current_call_handler()
    held = _taken(handler) if isinstance(handler, _Dispatcher | Tracer) else None
    if held and isinstance(handler, Tracer):
        for owner, _ in reversed(held):
            _drop_symbols(owner)


def _check_trace_stores(tracer: Tracer, out: Any) -> None:
    """Stop the trace if it left a placeholder in a container or object that outlives the
    call (anything the body did not create, or created and kept elsewhere), and is not
    part of what it returns; the placeholders are taken out of every container it stored
    them in first, so the run that follows starts from where the call began."""
    held = _taken(tracer)
    if not held:
        return
    owners: dict[int, tuple[Any, tuple[str, int]]] = {}
    for owner, where in held:
        owners.setdefault(id(owner), (owner, where))
    del held, owner
    # an owner nothing else holds has as many references as a fresh list held the same
    # way (the interpreter's own count of them varies between versions)
    alone = _references({0: ([], ("", 0))})[0]
    counts = _references(owners)
    returned = _reachable(out)
    escaped = None
    for key, (owner, where) in owners.items():
        outlives = type(owner) is _GlobalSlot or counts[key] > alone
        if outlives and key not in returned and _holds_symbol(owner):
            escaped = where
            break
    if escaped is None:
        return
    for owner, _ in reversed(owners.values()):  # a global's first value is put back last
        _drop_symbols(owner)
    file, line = escaped
    reason = StopReason(
        "value",
        "a leaf result was stored where it outlives the call (an argument, a global, an "
        "operator's field), which a replayed plan would not do:",
        "a placeholder",
        file,
        line,
        linecache.getline(file, line).strip() or None,
    )
    tracer.note_stop(reason)
    raise TraceStop(reason)


def _references(owners: dict[int, tuple[Any, Any]]) -> dict[int, int]:
    return {key: sys.getrefcount(owner) for key, (owner, _) in owners.items()}


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
        if isinstance(item, list | tuple | set | frozenset | deque):
            stack.extend((x, left - 1) for x in item)
        elif isinstance(item, dict):
            stack.extend((x, left - 1) for x in item.values())
        elif hasattr(item, "__dict__") and not isinstance(item, type | types.ModuleType):
            stack.extend((x, left - 1) for x in vars(item).values())
    return found


def _items_of(owner: Any) -> Any:
    if type(owner) is _GlobalSlot:
        return (owner.space.get(owner.name),)
    if isinstance(owner, list | deque):
        return owner
    if isinstance(owner, dict):
        return owner.values()
    if isinstance(owner, type | types.ModuleType) or not hasattr(owner, "__dict__"):
        return ()
    return vars(owner).values()


def _holds_symbol(owner: Any) -> bool:
    return any(first_symbol(item) is not None for item in _items_of(owner))


def _drop_symbols(owner: Any) -> None:
    """Take the placeholders a trace stored out of a list, deque or dict (an object's
    field is assigned again by the run that follows; a global gets its value back)."""
    if type(owner) is _GlobalSlot:
        if first_symbol(owner.space.get(owner.name)) is not None:
            if owner.before is _MISSING:
                owner.space.pop(owner.name, None)
            else:
                owner.space[owner.name] = owner.before
    elif isinstance(owner, list | deque):
        kept = [item for item in owner if first_symbol(item) is None]
        if len(kept) != len(owner):
            owner.clear()
            owner.extend(kept)
    elif isinstance(owner, dict):
        for key in [k for k, v in owner.items() if first_symbol(v) is not None]:
            del owner[key]
