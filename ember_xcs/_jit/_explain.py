"""Introspection: which strategy a jitted callable uses, why, and what it measured."""

from __future__ import annotations

from typing import Any

from ._jit import jit_states, registered, stats_of
from ._modes import JITMode
from ._stats import JitStats
from ._strategies import PlanEntry

__all__ = ["explain_jit_selection", "get_jit_stats", "get_jit_strategy_used", "is_jit_compiled"]


def get_jit_stats(fn: Any = None) -> JitStats | dict[str, JitStats]:
    """Measured counters of one jitted callable, or of every live one by name.

    **Returns:** a `JitStats` (a dict of them by name without `fn`). **Raises:**
    `TypeError` when `fn` is not jitted.

    !!! example
        ```python
        @xcs.op
        def shout(text: str) -> str:
            return text.upper()

        twice = xcs.jit(lambda q: [shout(q), shout(q)])
        twice("a"), twice("b")
        stats = xcs.get_jit_stats(twice)
        assert (stats.calls, stats.traces, stats.cache_hits, stats.leaf_calls) == (2, 1, 1, 2)
        ```

    `fn` may be a jitted function, a jitted operator, a jitted `Operator` class (totals
    over its instances) or an instance of one. See `JitStats` for the fields.
    """
    if fn is None:
        out: dict[str, JitStats] = {}
        for state in registered():
            stats = state.stats()
            name = stats.name
            while name in out:
                name += "'"
            out[name] = stats
        return out
    stats = stats_of(fn)
    if stats is None:
        raise TypeError(f"{fn!r} is not jitted; decorate it with @xcs.jit first")
    return stats


def is_jit_compiled(fn: Any) -> bool:
    """True when `fn` is jitted and holds at least one traced plan."""
    return any(isinstance(e, PlanEntry) for s in jit_states(fn) for e in s.entries())


def get_jit_strategy_used(fn: Any) -> JITMode | None:
    """The strategy of `fn`'s most recent call (`None` before the first call or if not jitted)."""
    for state in reversed(jit_states(fn)):
        if state.last_entry is not None:
            return state.last_entry.strategy
    return None


def explain_jit_selection(fn: Any) -> str:
    """Which strategy serves each input signature seen so far, and why.

    **Returns:** the explanation as text (one block per signature).

    !!! example
        ```python
        @xcs.op
        def shout(text: str) -> str:
            return text.upper()

        def exclaim(q: str) -> str:
            return shout(f"{q}!")  # an f-string of the input stops the trace

        jitted = xcs.jit(exclaim)
        jitted("hi")
        text = xcs.explain_jit_selection(jitted)
        assert "dynamic: chosen" in text and "formatted" in text
        assert xcs.get_jit_strategy_used(jitted) is xcs.JITMode.DYNAMIC
        assert not xcs.is_jit_compiled(jitted)  # no traced plan for this signature
        ```

    For each signature: the strategy chosen, the plan's shape (nodes, critical path,
    numeric segments), every opaque composite with the reason its trace stopped, or the
    trace-stop reason (file, line, what was asked of which value) that led to dynamic or
    as-written execution; then every strategy (`trace`, `structural`, `dynamic`,
    `plain`) with why it was or was not chosen.
    """
    states = jit_states(fn)
    if not states:
        return f"{fn!r} is not jitted"
    lines = []
    for state in states:
        lines.append(f"{state!r}")
        entries = state.entries()
        if not entries:
            lines.append(
                "  not called yet: the strategy is chosen per input signature on the first call"
            )
        for entry in entries:
            lines.append(f"  signature {entry.signature}:")
            lines += [f"    {line}" for line in entry.explain().splitlines()]
            lines += [f"    - {name}: {why}" for name, why in entry.considered]
    return "\n".join(lines)
