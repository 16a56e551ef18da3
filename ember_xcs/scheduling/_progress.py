"""`ProgressHooks`: a tqdm progress bar for long runs, drawn from hook events.

`ExecutionOptions(progress=True)` adds one of these to the run's hooks (the options
cannot import this layer, so this module registers a factory with them on import), so
the engine knows nothing about bars: explicit graphs, jitted calls and `vmap`/`pmap`
batches all get one the same way.

**When a bar appears.** Only for the *outermost* run (a jitted call inside a node, or a
batch inside a jitted function, counts toward its parent's bar instead of drawing its
own), only when `sys.stderr` is a terminal at the start of the run, and only once the run
has lasted `delay` seconds (tqdm's own `delay`): short runs and logs stay clean. The bar
counts finished nodes (a node that failed for good counts too, a retried one once) out
of the plan's size; a dynamic run does not know its size in advance, so it shows a count
and a rate. Concurrent outermost runs that share one options object share one bar (their
sizes add up).

**Nesting without engine support, and without a cost per node.** Whether a run is nested
is decided once, when it starts, from the thread's stack: a run started while the
operator of a node that a bar counts is running on this thread (its `NodeCall` frame is
on the stack: on a sync node's thread, or on the event loop while an `async def` node
runs) neither draws nor joins a bar. Its nodes are not counted either: the engine looks
up a run's node calls when the run starts (`_options.node_hook_calls`), and this hook
gives a nested run none, nor a run with no bar to draw. A run that an operator starts on
another thread of its own (a thread pool, `asyncio.to_thread`) is not on the node's
stack, so it counts as a run of its own and joins the open bar. The keyword methods
(what the events a Dask cluster's workers send call, and what a subclass that overrides
one gets) are called for every run; they read nesting from a `ContextVar` depth that
`on_node_start` raises, as each node runs in a copy of its run's context.

**Cost.** A counted node costs one C call when it finishes for good: the engine ticks
an `itertools.count` (`positional(..., tick=True)`), with no Python frame and no clock
read. Open bars are brought up to date every `REFRESH_SECONDS` (tqdm would not redraw
more often anyway) by one drawer thread, `ember-xcs-progress`, started with the first
bar and ended once no bar has been open for `LINGER_SECONDS`: runs that follow each other
share it, so a run opens and closes its bar without waiting for another thread (on this
2-core machine, starting and joining a thread per bar cost 0.4 ms a run under load, more
than the per-node calls it replaced on a 2,000-node grid). The run that closes a bar
draws its final count itself. A run with no bar (stderr is not a terminal) gets no node
calls at all. Until 2026-12-02 the engine called a Python method per node (with the end time, to
redraw from there); see `benchmarks/RESULTS.md`, "Observability overhead". tqdm is an
optional extra (`pip install 'ember_xcs[progress]'`); without it, `progress=True` is an
`OptionsError` saying what to install.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import sys
import threading
from contextvars import ContextVar
from typing import Any

from .. import _options
from .._errors import OptionsError
from .._options import positional
from ._hooks import RELAYED, ExecutionHooks
from ._node_call import NodeCall

__all__ = ["DEFAULT_DELAY", "REFRESH_SECONDS", "ProgressHooks"]

DEFAULT_DELAY = 2.0  # seconds before a bar appears: shorter runs never show one
REFRESH_SECONDS = 0.1  # the bar is brought up to date at most this often (tqdm's mininterval)
LINGER_SECONDS = 1.0  # the drawer thread ends once no bar has been open for this long
_ident = threading.get_ident
_depth: ContextVar[int] = ContextVar("ember_xcs_progress_depth", default=0)  # keyword calls only

# The frames that run a node's operator: while one is on a thread's stack, that thread is
# inside a node.
_NODE_CODE = frozenset({NodeCall._call_with_retries.__code__, NodeCall.acall.__code__})
# The hooks with an open bar in this process (by id: equal hooks are distinct bars), and
# the thread that redraws them (`_draw_open_bars`), both under `_bars_lock`.
_open: dict[int, ProgressHooks] = {}
_drawer: list[threading.Thread] = []
_bars_lock = threading.Lock()


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
        self._joined: dict[int, list[bool]] = {}  # thread -> did each run it started join the bar?
        # Every counted node ticks `_finished` (next(), atomic); reading it ticks it too, so
        # reads are counted (under `_lock`) and taken off
        self._finished = itertools.count()
        self._tick = self._finished.__next__
        self._reads = 0
        self._opened_at = 0  # nodes finished before the open bar opened
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
        # a run inside a node neither draws nor joins: its parent's bar covers it
        nested = _depth.get() or _inside_counted_node()
        joined = not nested and self._join(num_nodes, scheduler)
        self._joined.setdefault(_ident(), []).append(joined)  # a run ends on its own thread

    def _join(self, num_nodes: int, scheduler: str) -> bool:
        """Add this run to the open bar, or open one on a terminal; False if neither."""
        with self._lock:
            if self._bar is not None:
                self._runs += 1
                if num_nodes and self._bar.total is not None:
                    self._bar.total += num_nodes
                return True
            stream = self._stream()
            if not _is_terminal(stream):
                return False
            self._opened_at = self._count()
            self._bar = _new_bar(num_nodes, self.delay, stream, scheduler)
            self._runs = 1
            _opened(self)
            return True

    def on_graph_end(self, *, num_nodes: int, seconds: float, failed: bool) -> None:
        joined = self._joined.get(_ident())
        if not joined or not joined.pop():
            return
        with self._lock:
            bar = self._bar
            if bar is None:
                return
            self._runs -= 1
            if self._runs > 0:
                return
            self._bar = None
            done = self._count() - self._opened_at  # every node of the runs has finished
            with _bars_lock:
                del _open[id(self)]
        if done > bar.n:
            bar.update(done - bar.n)
        if bar.total is None:  # a dynamic run: now we know its size
            bar.total = bar.n
        bar.close()

    def _stream(self) -> Any:
        return self.file if self.file is not None else sys.stderr

    # --- drawing -----------------------------------------------------------------------------

    def _count(self) -> int:
        """Nodes counted so far, by this hook's bars (call under `_lock`)."""
        self._reads += 1
        return next(self._finished) - self._reads + 1

    def _redraw(self) -> None:
        """Bring the open bar up to date (the drawer thread calls this)."""
        with self._lock:
            bar = self._bar
            if bar is not None:
                done = self._count() - self._opened_at
                if done > bar.n:
                    bar.update(done - bar.n)

    # --- nodes -------------------------------------------------------------------------------
    # The engine ticks `_finished` itself as each node a run's bar counts finishes for good
    # (`_run_tick`, read as a run starts: see `_options.node_hook_calls`). The keyword
    # methods serve the events a Dask cluster's workers send and a subclass that overrides
    # one of them: they are called for every run, so they read nesting from a `ContextVar`
    # depth that `on_node_start` raises (the engine runs each node in a copy of its run's
    # context).

    @positional(None)
    def on_node_start(self, *, node_id: str, name: str, attempt: int) -> None:
        if self._bar is not None and not RELAYED.get():  # relayed: the worker knows depth
            _depth.set(_depth.get() + 1)

    @positional("_run_tick", tick=True)
    def on_node_end(self, *, node_id: str, name: str, seconds: float) -> None:
        if self._left_node() and self._bar is not None:
            self._tick()

    @positional(None)  # the tick counts a node that failed for good
    def on_node_failure(
        self, *, node_id: str, name: str, error: BaseException, attempt: int, will_retry: bool
    ) -> None:
        if will_retry:  # the next attempt raises the depth again
            if not RELAYED.get():
                _depth.set(max(_depth.get() - 1, 0))
        elif self._left_node() and self._bar is not None:
            self._tick()

    def _left_node(self) -> bool:
        """Lower the depth; True if the node that finished belongs to an outermost run
        (for a cluster's relayed events, the worker says: `RELAYED`)."""
        relayed = RELAYED.get()
        if relayed:
            return relayed == "run"
        depth = _depth.get()
        if depth == 0:  # its start came before the bar opened: not ours to count
            return False
        _depth.set(depth - 1)
        return depth == 1

    @property
    def _run_tick(self) -> Any:
        """The node counter's tick for the run now starting on this thread, if the bar
        counts its nodes."""
        return self._tick if self._counted() else None

    def _counted(self) -> bool:
        """Will the run starting on this thread have its nodes counted? Not if there is no
        bar to draw, nor if it runs inside a node of a run that has one."""
        if self._bar is None and not _is_terminal(self._stream()):
            return False
        return not (_depth.get() or _inside_counted_node())


def _inside_counted_node() -> bool:
    """Is this thread running the operator of a node that an open bar counts?

    Read from the stack, so it costs nothing per node: called as a run starts or ends,
    and it walks the stack only while some bar is open.
    """
    if not _open:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code in _NODE_CODE:
            ticks = frame.f_locals["self"].hooks[-1]  # `node_hook_calls`' last: the ticks
            if any(map(_counts, ticks)):
                return True
        frame = frame.f_back
    return False


def _counts(tick: Any) -> bool:
    """Is this node's tick an open bar's?"""
    return any(tick is hooks._tick for hooks in list(_open.values()))


def _opened(hooks: ProgressHooks) -> None:
    """Have the drawer thread redraw `hooks`' new bar; start the thread if none runs."""
    with _bars_lock:
        _open[id(hooks)] = hooks
        if not _drawer:
            drawer = threading.Thread(
                target=_draw_open_bars, name="ember-xcs-progress", daemon=True
            )
            _drawer.append(drawer)
            drawer.start()


def _draw_open_bars() -> None:
    """The drawer thread: redraw the open bars every `REFRESH_SECONDS`; end once none has
    been open for `LINGER_SECONDS`."""
    idle = 0.0
    while not _exiting.wait(REFRESH_SECONDS):
        with _bars_lock:
            bars = list(_open.values())
            idle = 0.0 if bars else idle + REFRESH_SECONDS
            if idle >= LINGER_SECONDS:
                _drawer.clear()
                return
        for hooks in bars:
            hooks._redraw()


_exiting = threading.Event()  # the interpreter is shutting down: the drawer ends


@atexit.register
def _stop_at_exit() -> None:
    """End the drawer before the interpreter finalizes (a daemon thread waking up during
    finalization aborts the process once JAX's C++ runtime is loaded; see `_starter`)."""
    _exiting.set()
    with _bars_lock:
        drawers = list(_drawer)
    for drawer in drawers:
        drawer.join(timeout=1.0)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty and isatty())
    except (OSError, ValueError):  # a closed stream
        return False


def _new_bar(total: int, delay: float, stream: Any, scheduler: str) -> Any:
    return _bar_class()(
        total=total or None,
        delay=delay,
        file=stream,
        unit="node",
        desc=f"ember_xcs ({scheduler})",
        dynamic_ncols=True,
    )


@functools.cache
def _bar_class() -> Any:
    from tqdm import tqdm  # an optional extra: imported when the first bar opens

    class _Bar(tqdm):  # no monitor thread: a run must not leave threads behind
        monitor_interval = 0

    return _Bar


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
