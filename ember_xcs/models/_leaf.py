"""Model calls inside a jitted body become leaf calls of the jit, awaited on its loop.

`jit` sees operator calls through one seam: `current_call_handler()` is set while a body is
traced or run with dynamic dispatch. A model's `complete(...)` called directly in such a
body (the self-consistency idiom `[model.complete(p) for _ in range(6)]`), and an
`LLMOperator` over an `async_native` model, hand the handler a small `async def` leaf
operator instead of blocking: each call becomes one graph node, the calls overlap, and
they are awaited on the engine's event loop rather than each holding a worker thread.

The leaf keeps a weak reference to its owner (so a cache of leaves never keeps a model or
operator alive) and is built once per owner and method, so plans and dynamic runs see
one stable operator per owner. Pickling (Dask) sends the owner itself.
"""

from __future__ import annotations

import threading
import weakref
from typing import Any

from ..operators import Operator

__all__ = ["AsyncLeaf", "async_leaf"]


class AsyncLeaf(Operator):
    """`await owner.<method>(*args, **kwargs)` as a leaf operator named `label`."""

    def __init__(self, owner: Any, method: str, label: str):
        self._owner = weakref.ref(owner)
        self._method = method
        self._label = label

    @property
    def name(self) -> str:
        return self._label

    async def forward(self, *args: Any, **kwargs: Any) -> Any:
        owner = self._owner()
        if owner is None:  # only reachable through a plan that outlived its operators
            raise RuntimeError(f"{self._label}: the model or operator it calls was deleted")
        return await getattr(owner, self._method)(*args, **kwargs)

    def __reduce__(self) -> tuple[Any, ...]:
        return (async_leaf, (self._owner(), self._method, self._label))


_leaves: weakref.WeakKeyDictionary[Any, dict[str, AsyncLeaf]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def async_leaf(owner: Any, method: str, label: str) -> AsyncLeaf:
    """The one `AsyncLeaf` for `owner.method`."""
    with _lock:
        per_owner = _leaves.setdefault(owner, {})
        leaf = per_owner.get(method)
        if leaf is None:
            leaf = per_owner[method] = AsyncLeaf(owner, method, label)
        return leaf
