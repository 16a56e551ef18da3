"""`ProgressHooks`: a tqdm progress bar for long runs, drawn from hook events.

`ExecutionOptions(progress=True)` adds one of these to the run's hooks (the options
cannot import this layer, so this module registers a factory with them on import), so
the engine knows nothing about bars: explicit graphs, jitted calls and `vmap`/`pmap`
batches all get one the same way.

**When a bar appears.** Only for the *outermost* run (a jitted call inside a node, or a
batch inside a jitted function, counts toward its parent's bar instead of drawing its
own), only when `sys.stderr` is a terminal at the start of the run, and only once the run
has lasted `delay` seconds (tqdm's own `delay`): short runs and logs stay clean. The bar
counts finished nodes (a node that failed for good counts too) out of the plan's size;
a dynamic run does not know its size in advance, so it shows a count and a rate.

**Nesting without engine support.** Node events carry no run id, so nesting is read from
a `ContextVar` depth that `on_node_start` raises and `on_node_end` lowers: the engine
runs each node in a copy of the context its run was started from, so a nested run's
nodes see the depth of the node that started it. Concurrent outermost runs that share
one options object share one bar (their sizes add up).

**Cost.** With no bar open (stderr is not a terminal), node events return at once: the
two calls cost what an empty `ExecutionHooks` costs (`benchmarks/RESULTS.md`,
"Observability overhead"). tqdm is an optional extra
(`pip install 'ember_xcs[progress]'`); without it, `progress=True` is an `OptionsError`
saying what to install.
"""

from __future__ import annotations

import sys
import threading
from contextvars import ContextVar
from typing import Any

from .. import _options
from .._errors import OptionsError
from ._hooks import ExecutionHooks

__all__ = ["DEFAULT_DELAY", "ProgressHooks"]

DEFAULT_DELAY = 2.0  # seconds before a bar appears: shorter runs never show one
_depth: ContextVar[int] = ContextVar("ember_xcs_progress_depth", default=0)


class ProgressHooks(ExecutionHooks):
    """Draw a tqdm bar for runs longer than `delay` seconds on a terminal.

    Usually made for you by `ExecutionOptions(progress=...)`; pass one in `hooks=` to
    choose the stream (`file=`, default `sys.stderr` at each run's start).
    """

    def __init__(self, delay: float = DEFAULT_DELAY, *, file: Any = None) -> None:
        if isinstance(delay, bool) or not isinstance(delay, int | float) or not delay >= 0:
            raise OptionsError(f"ProgressHooks: delay must be seconds >= 0, got {delay!r}")
        if file is not None and not callable(getattr(file, "write", None)):
            raise OptionsError(
                f"ProgressHooks: file must be a writable stream such as sys.stderr, got {file!r}"
            )
        self.delay = delay
        self.file = file
        self._bar: Any = None
        self._runs = 0  # outermost runs sharing the open bar
        self._lock = threading.Lock()
        self.added_by_progress_option = False

    def __eq__(self, other: object) -> bool:  # so ExecutionOptions(progress=True) == itself
        if not isinstance(other, ProgressHooks):
            return NotImplemented
        return (self.delay, self.file) == (other.delay, other.file)

    def __hash__(self) -> int:
        return hash((type(self), self.delay, id(self.file)))

    def __repr__(self) -> str:
        return f"ProgressHooks(delay={self.delay})"

    # --- runs --------------------------------------------------------------------------------

    def on_graph_start(self, *, num_nodes: int, scheduler: str) -> None:
        if _depth.get():  # a run inside a node: its parent's bar covers it
            return
        with self._lock:
            if self._bar is not None:
                self._runs += 1
                if num_nodes and self._bar.total is not None:
                    self._bar.total += num_nodes
                return
            stream = self.file if self.file is not None else sys.stderr
            if not _is_terminal(stream):
                return
            self._bar = _new_bar(num_nodes, self.delay, stream, scheduler)
            self._runs = 1

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        if _depth.get() or self._bar is None:
            return
        with self._lock:
            bar = self._bar
            if bar is None:
                return
            self._runs -= 1
            if self._runs > 0:
                return
            self._bar = None
        if bar.total is None:  # a dynamic run: now we know its size
            bar.total = bar.n
        bar.close()

    # --- nodes -------------------------------------------------------------------------------

    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        if self._bar is not None:
            _depth.set(_depth.get() + 1)

    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        if self._bar is not None:
            self._finished()

    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        if self._bar is not None:
            if will_retry:  # the next attempt raises the depth again
                _depth.set(max(_depth.get() - 1, 0))
            else:
                self._finished()

    def _finished(self) -> None:
        depth = _depth.get()
        if depth == 0:  # its start came before the bar opened: not ours to count
            return
        _depth.set(depth - 1)
        if depth == 1:
            with self._lock:
                if self._bar is not None:
                    self._bar.update(1)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed stream
        return False


def _new_bar(total: int, delay: float, stream: Any, scheduler: str) -> Any:
    from tqdm import tqdm

    class _Bar(tqdm):  # no monitor thread: a run must not leave threads behind
        monitor_interval = 0

    return _Bar(
        total=total or None,
        delay=delay,
        file=stream,
        unit="node",
        desc=f"ember_xcs ({scheduler})",
        dynamic_ncols=True,
    )


def _progress_hooks(progress: bool | float) -> ProgressHooks:
    try:  # imported once, then a dict lookup: options are made often
        import tqdm  # noqa: F401
    except ImportError:
        raise OptionsError(
            f"progress={progress!r} draws its bar with tqdm, which is not installed; run "
            "`pip install 'ember_xcs[progress]'` (or `pip install tqdm`), or drop progress="
        ) from None
    hooks = ProgressHooks(DEFAULT_DELAY if progress is True else float(progress))
    hooks.added_by_progress_option = True  # so `replace(progress=...)` swaps it, not stacks it
    return hooks


_options.register_progress_hooks(_progress_hooks)
