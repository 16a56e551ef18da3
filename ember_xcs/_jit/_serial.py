"""Serial runs: a signature whose dynamic runs overlap nothing runs its calls at once.

Most width-1 programs (a router, a retry loop, an agent loop, a chain of thought) make a
call, use its value, then make the next call. Nothing can overlap there, and a dynamic
run still pays to dispatch each call: a node added to an engine `Run`, held until the
body needs it (the engine's "A lone call" rule), then run on the body's thread. That
work is small when warm (about 30 µs a call here) but it runs just after the previous
call returned, when this VM runs Python several times slower than warm, so a width-1
program was about 0.4 ms per call slower under jit than plainly (`benchmarks/RESULTS.md`,
"A width-1 call's cost"). Running less Python per call is the only way to close that
gap, so a signature that has shown it never overlaps stops dispatching.

**When.** Each `DynamicEntry` keeps a `Serialness`. A dynamic run where every call ran
on the body's thread (`Run.here == Run.count`: none was handed to a worker, none was
`async def`, no deadline) counts as serial; after `LEARN` serial runs in a row, the
signature's next runs are serial runs. Only the `"auto"`, `"parallel"` and `"wave"`
schedulers qualify, without `timeout_seconds` or `node_timeout_seconds` (a call on the
body's thread cannot be interrupted), and not under a JAX transformation. A call the body
makes inside an `execution_options(node_timeout_seconds=...)` block ends serial running
for the same reason (the run escalates, below); other options set in the body reach the
call as in a dynamic run (its `CallScope`).

**What a serial run does.** The body runs rewritten, as in every dynamic run, and each
leaf call runs at once on the body's thread through the engine's `NodeCall` (retries,
node hooks, `Timeline`, progress, node-naming errors; `engine_status` counts it), with
compiled numeric leaves as in a dynamic run. The call returns a `LazyResult` that is
already done, so the rewritten code's checks find the value at once. A failure is
raised where the body uses the value (`except` around the use sees what the plain call
raised), and a failure the body never used is raised when the call ends, as in a
dynamic run. Calls run in the order and on the thread the plain function would run them.

**What would differ, and how it is caught.** A dynamic run overlaps calls in exactly
two situations, and a serial run watches for both:

1. *The body makes a call while the result of its previous call is still unused* (not
   read, not passed to this call): the two are independent. From that call on, the run
   is an engine run (`escalate`): a `Run` adopts the calls made so far as finished
   nodes, and this call and every later one are dispatched as in any dynamic run, so
   they overlap. Only the calls already made did not overlap with them. A call made
   from a thread the body handed its context to while a call is running counts too:
   the running call is adopted as in flight, and its outcome reaches the engine run
   when it returns (`Run.adopt`'s `running`); the lock is not held while a call runs,
   so two calls that need each other (a barrier) do not deadlock.
2. *The body runs its own code for longer than `IDLE` between a call returning and the
   first use of its value*: a dynamic run would have handed that call to a worker after
   the starter's grace (`GRACE`, 2 ms) and the interpreter's switch interval (up to
   5 ms, while the body holds the GIL), overlapping the rest of the body's work. Below
   that a dynamic run overlaps next to nothing either, and a thread the machine merely
   paused for a moment does not end serial running.

Either ends serial running for the signature (`Serialness.broke`, shown by
`explain_jit_selection`): its next runs dispatch again, and serial runs are tried again
only after twice as many serial runs in a row as last time. What it can cost is
therefore one run's overlap each time a signature changes its shape, less each time.
"""

from __future__ import annotations

import sys
import threading
import time
from contextvars import copy_context
from typing import Any

from .._errors import XCSError
from .._options import ExecutionOptions, node_hook_calls
from ..operators import Operator, intercept_calls
from ..scheduling import (
    GRACE,
    CallScope,
    ExecutionStats,
    NodeCall,
    PlanNode,
    Run,
    as_xcs_error,
    count_live,
    forget_live,
    trace_path,
)
from ._dynamic import LazyResult, _collect, _Dispatcher, _executor_for, _lazies, _resolve_all

__all__ = ["IDLE", "LEARN", "SERIAL_SCHEDULERS", "SerialDispatcher", "SerialRun", "Serialness"]

LEARN = 3  # serial dynamic runs in a row before a signature's runs become serial runs
IDLE = GRACE + sys.getswitchinterval()  # see point 2 of the module docstring
_MOST = 1 << 10  # the most runs in a row ever asked for, however often it broke
SERIAL_SCHEDULERS = frozenset({"auto", "parallel", "wave"})
_FAILED = object()
_get = object.__getattribute__


class Serialness:
    """Whether a signature's runs are serial runs; see the module docstring."""

    __slots__ = ("broke", "lock", "needed", "on", "streak")

    def __init__(self) -> None:
        self.lock = threading.Lock()  # runs of one signature may end on several threads
        self.on = False
        self.streak = 0
        self.needed = LEARN
        self.broke: str | None = None  # why serial running last stopped

    def admits(self, options: ExecutionOptions) -> bool:
        """A serial run for these options (checked per call: options change)."""
        return (
            self.on
            and type(options.scheduler) is str  # a custom scheduler object never is
            and options.scheduler in SERIAL_SCHEDULERS
            and options.timeout_seconds is None
            and options.node_timeout_seconds is None
        )

    def saw(self, run: Run | SerialRun) -> None:
        """After a run of the signature: a dynamic run counts if every call ran on the
        body's thread; a serial run that found it could overlap stops serial running."""
        with self.lock:
            if type(run) is SerialRun:
                if run.broke is not None:
                    self.on, self.streak, self.broke = False, 0, run.broke
                    self.needed = min(self.needed * 2, _MOST)
            elif run.here != run.count:
                self.streak = 0
            else:
                self.streak += 1
                if self.streak >= self.needed:
                    self.on = True

    def describe(self) -> str | None:
        if self.on:
            return (
                f"serial: calls run at once on the body's thread ({self.needed} runs in a "
                "row overlapped nothing); the first call that could overlap goes back to "
                "dispatching"
            )
        if self.broke is not None:
            return f"dispatching again after a serial run found overlap: {self.broke}"
        return None


class SerialRun:
    """The calls of one serial run, made on the body's thread, until it escalates.

    Looks like an engine `Run` to `LazyResult` and the rewritten code (`is_done`,
    `wait`, `nodes`); after `escalate`, those go to the engine run, which holds the
    same calls under the same indices.
    """

    __slots__ = (
        "__weakref__", "_live", "broke", "engine", "errors", "executor", "hooks", "lock", "nodes",
        "options", "ran", "results", "returned", "running", "scheduler", "seen", "start",
        "unused",
    )  # fmt: skip
    ready = held = ()  # what `engine_status` counts as queued: a serial run queues nothing

    def __init__(self, options: ExecutionOptions):
        self.options = options
        self.hooks = node_hook_calls(options)
        self.nodes: list[PlanNode] = []
        self.results: list[Any] = []
        self.errors: dict[int, XCSError] = {}
        self.seen: set[int] = set()  # ids of errors the body was handed
        self.unused = -1  # the last call, while the body has not used its value
        self.ran = 0  # calls run (a call depending on a failed one does not run)
        self.returned = 0.0  # when it returned
        self.engine: Run | None = None
        self.executor: Any = None
        self.scheduler = "parallel"  # what a dynamic run of these schedulers reports
        self.broke: str | None = None
        self.lock = threading.Lock()  # calls from threads the body hands its context to
        self.running: list[int] = []  # the call in flight, for `engine_status`
        self.start = time.perf_counter()
        self._live = count_live(self)

    @property
    def peak(self) -> int:
        """Calls in flight at once so far, for `engine_status`: one once a call ran."""
        return min(self.ran, 1)

    # --- what LazyResult and the rewritten code ask ------------------------------------

    def is_done(self, i: int) -> bool:
        engine = self.engine
        return True if engine is None else engine.is_done(i)

    def wait(self, i: int) -> Any:
        """Call `i`'s value, or its error; the body uses it."""
        if self.engine is not None:
            return self.engine.wait(i)
        if i == self.unused:
            self._used()
        value = self.results[i]
        if value is _FAILED:
            error = self.errors[i]
            self.seen.add(id(error))
            raise error
        return value

    def _used(self) -> None:
        idle = time.perf_counter() - self.returned
        if idle > IDLE and self.broke is None:
            self.broke = (
                f"the body ran {idle * 1e3:.1f} ms of its own code between call "
                f"{self.nodes[self.unused].node_id!r} returning and using its result; a "
                "dispatched call would have overlapped it"
            )
        self.unused = -1

    # --- calls -------------------------------------------------------------------------

    def call(self, node_id: str, name: str, target: Any, args: Any, kwargs: Any,
             lazies: list[LazyResult], scope: CallScope | None) -> int:  # fmt: skip
        """Run one call now, on this thread; its index. `lazies`: this run's results in
        its arguments (used by it: they are resolved here). `scope`: the options block
        the body made it in, if any (`_Dispatcher.scope_here`)."""
        i = len(self.nodes)
        deps: tuple[int, ...] = ()
        failed = None
        if lazies:
            deps = tuple(dict.fromkeys(_get(x, "_index") for x in lazies))
            failed = next((self.errors[d] for d in deps if d in self.errors), None)
            if failed is None:
                args = _resolve_all(args)
                kwargs = _resolve_all(kwargs) if kwargs else kwargs
        node = PlanNode(node_id, name, target, deps, None, False)
        self.nodes.append(node)
        self.results.append(_FAILED)  # until it returns: indices stay aligned
        if failed is None:
            self.ran += 1
            if scope is None:
                call = NodeCall(
                    node_id, name, target, args, kwargs, self.options, False, self.hooks
                )
            else:
                call = scope.call(node_id, name, target, args, kwargs, False)
            self.running.append(i)
            # The call runs without the lock (the caller holds it): a thread the body
            # handed its context to may make a call meanwhile, which escalates the run
            # (the two could overlap, and may need each other: a barrier, a queue).
            self.lock.release()
            outcome: tuple[int, bool, Any] = (i, False, None)
            try:
                with intercept_calls(None):  # a leaf's own operator calls are not this run's
                    try:
                        outcome = (i, True, call())
                    except BaseException as exc:  # noqa: BLE001 - raised where the body uses it
                        outcome = (i, False, exc)
            finally:
                self.lock.acquire()
                self.running.remove(i)
                if self.engine is not None:  # escalated meanwhile: the engine takes it in
                    self.engine.done.put(outcome)
            if not isinstance(outcome[2], Exception) and not outcome[1]:
                if self.engine is None:  # KeyboardInterrupt: on its way out now
                    self.errors[i] = as_xcs_error(outcome[2], node)
                raise outcome[2]
            if self.engine is not None:
                return i
            if outcome[1]:
                self.results[i] = outcome[2]
            else:
                failed = trace_path(as_xcs_error(outcome[2], node), self.nodes, i)
        if failed is not None:
            self.errors[i] = failed
        self.unused, self.returned = i, time.perf_counter()
        return i

    def escalate(self, why: str) -> Run:
        """From now on an engine run: it adopts the calls made so far."""
        with intercept_calls(None):
            self.executor, self.scheduler = _executor_for(self.options)
        engine = Run.dynamic_run(self.options, self.executor, self.scheduler)
        engine.adopt(self.nodes, self.results, self.errors, self.seen, self.ran, self.running)
        self.broke = self.broke or why
        self.engine = engine
        return engine

    # --- the end of the run ------------------------------------------------------------

    def finish(self) -> BaseException | None:
        """The first failure the body never saw, if any (every call has finished)."""
        if self.engine is not None:
            return self.engine.finish()
        for i in sorted(self.errors):
            if id(self.errors[i]) not in self.seen:
                return self.errors[i]
        return None

    def close(self) -> None:
        forget_live(self._live)
        if self.engine is not None:
            self.engine.close()
            self.executor.close()

    def stats(self) -> ExecutionStats:
        wall = time.perf_counter() - self.start
        if self.engine is not None:
            engine = self.engine
            return ExecutionStats(self.scheduler, wall, engine.count, engine.peak)
        return ExecutionStats(self.scheduler, wall, self.ran, self.peak)


class SerialDispatcher(_Dispatcher):
    """The call handler of a serial run: each leaf call runs at once (`SerialRun.call`)
    until one could overlap the previous call; then, as `_Dispatcher`, on the engine."""

    def __init__(self, run: SerialRun, numeric: Any):
        super().__init__(run, numeric)  # type: ignore[arg-type]
        self.serial = run

    def __call__(
        self,
        operator: Operator,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        node_id: str | None = None,
    ) -> Any:
        serial = self.serial
        if serial.engine is not None:
            return super().__call__(operator, args, kwargs, node_id)
        kind = self.kind(operator)
        if kind.composite:
            return operator.forward(*args, **kwargs)
        lazies = _lazies(args)
        if kwargs:
            _collect(kwargs, lazies)
        scope = None
        if copy_context() != self.context:  # the body entered a block, or set a variable
            scope = self.scope_here()
        with serial.lock:
            unused = serial.unused
            why = None
            if kind.is_async:
                why = f"{operator.name} is async def: the event loop runs it"
            elif scope is not None and scope.timeout is not None:
                why = (
                    f"a call to {operator.name} was made under node_timeout_seconds="
                    f"{scope.timeout}: a call on the body's thread cannot be interrupted"
                )
            elif serial.running:
                why = (
                    f"a call to {operator.name} was made while call "
                    f"{serial.nodes[serial.running[0]].node_id!r} was running: the two could "
                    "overlap"
                )
            elif unused >= 0 and all(_get(x, "_index") != unused for x in lazies):
                why = (
                    f"a call to {operator.name} was made while the result of call "
                    f"{serial.nodes[unused].node_id!r} was unused: the two could overlap"
                )
            if why is None:
                target = operator
                if kind.compiled and self.numeric is not None:
                    target = self.numeric.leaf(operator, len(args), tuple(kwargs))
                name = operator.name
                node_id = self._fresh(node_id or name.replace(".", "_"))
                index = serial.call(node_id, name, target, args, kwargs, lazies, scope)
                return LazyResult(serial, index)
            self.run = serial.escalate(why)
        return super().__call__(operator, args, kwargs, node_id)
