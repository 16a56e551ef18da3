"""`method_leaf`: a method of a non-operator object called as one leaf operator.

A model is not an operator: anything with `name`, `complete` and `acomplete` is one. When
a jitted body calls `model.complete(prompt)` directly (the self-consistency idiom), jit
hands the call to the run as `method_leaf(model, "complete")`, so it becomes one node
that overlaps with the others, and the model's own `complete` (a user's override too)
runs on the worker, with concrete arguments, exactly once. With `is_async=True` the leaf
awaits `owner.<method>(...)` on the engine's event loop instead of holding a thread (the
HTTP model's calls, an `LLMOperator` over it).

One leaf per object and method, holding the object weakly where it can, so plans and
dynamic runs see one stable operator per owner and a cache of leaves keeps no model
alive. Pickling (Dask) sends the owner itself.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from ._base import Operator

__all__ = ["MethodLeaf", "is_model", "method_leaf"]


def is_model(owner: Any) -> bool:
    """`owner` follows the `Model` protocol (`name`, `complete`, `acomplete`) and is not an
    operator: jit calls its `complete` as a leaf and keys a call on which model it got."""
    return (
        not isinstance(owner, Operator)
        and callable(getattr(owner, "acomplete", None))
        and callable(getattr(owner, "complete", None))
        and hasattr(owner, "name")
    )


class MethodLeaf(Operator):
    """`owner.<method>(*args, **kwargs)` as a leaf operator named `label`."""

    composite = False

    def __init__(self, owner: Any, method: str, label: str):
        try:
            self._owner: Any = weakref.ref(owner)
        except TypeError:  # an object without weak references: hold it
            self._owner = lambda: owner
        self._method = method
        self._label = label

    @property
    def name(self) -> str:
        return self._label

    def _bound(self) -> Any:
        owner = self._owner()
        if owner is None:  # only reachable through a plan that outlived the object
            raise RuntimeError(f"{self._label}: the object it calls was deleted")
        return getattr(owner, self._method)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._bound()(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (method_leaf, (self._owner(), self._method, self._label, self._is_async))

    _is_async = False


class _AsyncMethodLeaf(MethodLeaf):
    """`await owner.<method>(*args, **kwargs)`: awaited on the engine's event loop."""

    _is_async = True

    async def forward(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        return await self._bound()(*args, **kwargs)


_leaves: dict[tuple[int, str, bool], tuple[Any, MethodLeaf]] = {}
_lock = threading.Lock()


def method_leaf(
    owner: Any, method: str, label: str | None = None, is_async: bool = False
) -> MethodLeaf:
    """The one leaf for `owner.method` (`is_async`: the method is `async def`)."""
    key = (id(owner), method, is_async)
    with _lock:
        found = _leaves.get(key)
        if found is not None and found[0]() is owner:
            return found[1]
        label = label or f"{getattr(owner, 'name', type(owner).__name__)}.{method}"
        leaf = (_AsyncMethodLeaf if is_async else MethodLeaf)(owner, method, label)
        try:
            ref: Any = weakref.ref(owner, lambda _: _leaves.pop(key, None))
        except TypeError:
            ref = lambda: owner  # noqa: E731 - held for the process, as the object is
        _leaves[key] = (ref, leaf)
        return leaf
