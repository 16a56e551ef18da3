"""`JITMode` and the configuration a `jit` call captures."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable

from .._errors import OptionsError

__all__ = ["STRATEGIES", "JITMode", "JitConfig"]


class JITMode(enum.StrEnum):
    """How `jit` turns a function into work for the scheduler.

    | mode | what it does | when the trace stops |
    |---|---|---|
    | `AUTO` | trace into composites; a composite that cannot be traced becomes one node | that composite runs with dynamic dispatch (or as written); a stop in the function itself runs it dynamically |
    | `TRACE` | trace the whole call, composites included, into one plan | the whole call runs dynamically (or as written) |
    | `STRUCTURAL` | trace into composites; untraceable ones become opaque nodes | the opaque part runs as written; never dynamic |
    | `DYNAMIC` | run the body every call, leaf calls dispatched asynchronously | never traces |
    """

    AUTO = "auto"
    TRACE = "trace"
    STRUCTURAL = "structural"
    DYNAMIC = "dynamic"


@dataclasses.dataclass(frozen=True)
class JitConfig:
    """Everything `jit(...)` was told; shared by all the state it creates."""

    mode: JITMode = JITMode.AUTO
    preserve_stochasticity: bool = False
    static_argnums: tuple[int, ...] = ()
    static_argnames: tuple[str, ...] = ()
    cache_size: int = 128
    strict: bool = False
    disabled: frozenset[str] = frozenset()  # strategies ruled out (`STRATEGIES`)

    @classmethod
    def make(
        cls,
        mode: str | JITMode,
        preserve_stochasticity: bool,
        static_argnums: int | tuple[int, ...] | list[int],
        static_argnames: str | tuple[str, ...] | list[str],
        cache_size: int,
        strict: bool,
        disable_strategies: str | tuple[str, ...] | list[str] = (),
    ) -> JitConfig:
        try:
            mode = JITMode(mode)
        except ValueError:
            choices = ", ".join(repr(m.value) for m in JITMode)
            raise OptionsError(f"unknown jit mode {mode!r}; choose one of {choices}") from None
        if not isinstance(cache_size, int) or isinstance(cache_size, bool) or cache_size < 1:
            raise OptionsError(f"cache_size must be a positive int, got {cache_size!r}")
        nums = (static_argnums,) if isinstance(static_argnums, int) else static_argnums
        names = (static_argnames,) if isinstance(static_argnames, str) else static_argnames
        nums = tuple(nums) if isinstance(nums, Iterable) else (nums,)  # a float: refused below
        names = tuple(names) if isinstance(names, Iterable) else (names,)
        if not all(isinstance(n, int) and not isinstance(n, bool) for n in nums):
            raise OptionsError(f"static_argnums must be an int or ints, got {static_argnums!r}")
        if not all(isinstance(n, str) for n in names):
            raise OptionsError(f"static_argnames must be a str or strs, got {static_argnames!r}")
        disabled = _disabled(mode, disable_strategies)
        return cls(
            mode, bool(preserve_stochasticity), nums, names, cache_size, bool(strict), disabled
        )


STRATEGIES = ("trace", "structural", "dynamic", "plain")  # strongest first


def _disabled(mode: JITMode, names: str | tuple[str, ...] | list[str]) -> frozenset[str]:
    """Validate `disable_strategies` against the names and the mode."""
    names = (names,) if isinstance(names, str) else tuple(names)
    unknown = [n for n in names if n not in STRATEGIES]
    if unknown:
        raise OptionsError(
            f"disable_strategies names {', '.join(map(repr, unknown))}; the strategies are "
            f"{', '.join(map(repr, STRATEGIES))}"
        )
    disabled = frozenset(names)
    left = {
        JITMode.DYNAMIC: {"dynamic"},
        JITMode.TRACE: {"trace", "dynamic", "plain"},
        JITMode.STRUCTURAL: {"trace", "structural", "plain"},
        JITMode.AUTO: set(STRATEGIES),
    }[mode] - disabled
    if not left:
        raise OptionsError(
            f"jit(mode={mode.value!r}, disable_strategies={sorted(disabled)}) leaves no "
            "strategy to run the function with; enable one of them or choose another mode"
        )
    return disabled
