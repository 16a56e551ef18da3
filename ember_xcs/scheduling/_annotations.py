"""`annotate_node`: an operator tells the hooks what only it knows (model, tokens).

Node events carry the node id, operator name and attempt, but not what the call did
inside: which model answered, how many tokens it used. An operator (or the model code it
calls) reports that with `annotate_node(model="gpt-4o", input_tokens=812, ...)`; a hook
that wants it opens a fresh dict in `on_node_start` and reads it in `on_node_end`.

The dict lives in a `ContextVar`: the node's hooks and its operator run on the same thread
in the same context (its own copy of the run's context on a worker thread, its task's
context on the event loop), so each attempt sees only its own annotations. When no hook
asked, `annotate_node` finds no dict and does nothing.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any

__all__ = ["annotate_node", "close_annotations", "open_annotations"]

_current: ContextVar[dict[str, Any] | None] = ContextVar("ember_xcs_annotations", default=None)


def annotate_node(**attributes: Any) -> None:
    """Attach `attributes` to the node attempt running here, for the hooks that record them.

    Known keys: `model` (the model's name), `input_tokens`, `output_tokens`; any other
    key is kept under its own name. Outside a node, or with no hook listening, it does
    nothing.

    !!! example
        ```python
        @xcs.op
        def ask(question):
            response = model.complete(question)
            xcs.scheduling.annotate_node(
                model=model.name,
                input_tokens=response.usage.prompt_tokens,
                output_tokens=response.usage.completion_tokens,
            )
            return response.text
        ```
    """
    found = _current.get()
    if found is not None:
        found.update(attributes)


def open_annotations() -> tuple[dict[str, Any], Token[dict[str, Any] | None]]:
    """A fresh dict that `annotate_node` fills until `close_annotations(token)`."""
    annotations: dict[str, Any] = {}
    return annotations, _current.set(annotations)


def close_annotations(token: Token[dict[str, Any] | None]) -> None:
    """Undo one `open_annotations` (in the same context, as node hooks are)."""
    try:
        _current.reset(token)
    except ValueError:  # a hook pair split across contexts: leave the context alone
        pass
