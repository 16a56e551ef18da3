"""Execution options: one frozen dataclass, a ContextVar, and environment defaults.

Precedence, highest first (as in JAX config states and Dask's `num_workers or config`):

1. an `ExecutionOptions` passed explicitly (`execute_graph(..., options=...)`);
2. the innermost `execution_options(...)` block (a ContextVar, so it is per thread and
   per asyncio task, and the engine copies it into its worker threads; a block entered
   inside a jitted body reaches the calls made in it: see `execution_options`);
3. `EMBER_XCS_*` environment variables, read once on first use and validated (a scheduler
   name when a run starts, against the schedulers registered by then);
4. the dataclass defaults.

Every field has a consumer in the engine and a test; an unknown option is an error.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import threading
from contextvars import ContextVar, Token
from typing import Any

from ._errors import OptionsError

__all__ = [
    "GRAPH_PASSES",
    "ExecutionOptions",
    "current_options",
    "execution_options",
    "hook_calls",
    "node_hook_calls",
    "positional",
]


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExecutionOptions:
    """How a graph or jit plan is executed.

    **Arguments:**

    - `scheduler`: `"auto"` (parallel when the graph has parallelism, else sequential),
      `"sequential"`, `"parallel"`, `"wave"`, `"noop"` (dry run), `"dask"`, the name of a
      registered scheduler, or any object following the `Scheduler` protocol.
    - `max_workers`: cap on nodes in flight at once. `None` means as wide as the graph,
      up to 512 (I/O-bound calls spend their time waiting, not computing).
    - `timeout_seconds`: deadline for the whole execution; on expiry an
      `ExecutionTimeoutError` names the nodes still running. `None` means no limit;
      `float("inf")` and NaN are refused (say `None`).
    - `node_timeout_seconds`: deadline for each node, measured from its start.
    - `return_partial_results`: on failure, keep running the nodes that do not depend
      on the failed one and return every completed output with the failures listed,
      instead of raising.
    - `retries`: extra attempts for a node whose operator raises one of `retry_on`.
    - `retry_backoff`: seconds before the first retry; doubled on each further attempt.
    - `retry_on`: exception types worth retrying.
    - `hooks`: `ExecutionHooks` objects notified of graph and node events (one hook or a
      sequence of them).
    - `include_intermediates`: return every node's output, not only the sinks'.
    - `dask_client`: a `distributed.Client` or a scheduler address for `scheduler="dask"`;
      `None` uses the current default client.
    - `progress`: `True` draws a progress bar (tqdm, the `progress` extra) for a run that
      lasts over 2 s while stderr is a terminal; a number of seconds sets that delay;
      `False` (default) adds nothing. It adds a `ProgressHooks` to `hooks`.
    - `graph_passes`: graph passes `execute_graph` applies first, in order, from
      `GRAPH_PASSES` (or `"all"`); none by default. See `Graph.eliminate_dead_nodes`.

    Durations are finite numbers of seconds: `float("inf")`, NaN and values beyond
    `threading.TIMEOUT_MAX` (about 292 years) raise `OptionsError`, so a bad value fails
    here rather than as an `OverflowError` in the middle of a run.
    """

    scheduler: Any = "auto"
    max_workers: int | None = None
    timeout_seconds: float | None = None
    node_timeout_seconds: float | None = None
    return_partial_results: bool = False
    retries: int = 0
    retry_backoff: float = 0.05
    retry_on: tuple[type[BaseException], ...] = (Exception,)
    hooks: tuple[Any, ...] = ()
    include_intermediates: bool = False
    dask_client: Any = None
    progress: bool | float = False
    graph_passes: tuple[str, ...] = ()

    def __new__(cls, *positional: Any, **overrides: Any) -> ExecutionOptions:
        # Checked here, before the dataclass __init__, so a misspelt option is an
        # OptionsError with a suggestion rather than a bare TypeError.
        if positional:
            raise TypeError(
                f"ExecutionOptions takes keyword arguments only, got {positional[0]!r} "
                "positionally; write e.g. ExecutionOptions(scheduler='parallel')"
            )
        check_option_names(overrides)
        return super().__new__(cls)

    def __post_init__(self) -> None:
        _check_positive_int("max_workers", self.max_workers)
        _check_positive_number("timeout_seconds", self.timeout_seconds)
        _check_positive_number("node_timeout_seconds", self.node_timeout_seconds)
        if not isinstance(self.retries, int) or isinstance(self.retries, bool) or self.retries < 0:
            raise OptionsError(f"retries must be an int >= 0, got {self.retries!r}")
        if not _is_duration(self.retry_backoff) or self.retry_backoff < 0:
            raise OptionsError(
                f"retry_backoff must be a finite number of seconds >= 0, got {self.retry_backoff!r}"
            )
        for flag in ("return_partial_results", "include_intermediates"):
            if not isinstance(getattr(self, flag), bool):
                raise OptionsError(f"{flag} must be True or False, got {getattr(self, flag)!r}")
        object.__setattr__(self, "retry_on", _as_exception_types(self.retry_on))
        object.__setattr__(self, "hooks", _with_progress(_as_hooks(self.hooks), self.progress))
        object.__setattr__(self, "graph_passes", _as_graph_passes(self.graph_passes))
        if self.scheduler == "" or (
            not isinstance(self.scheduler, str) and not hasattr(self.scheduler, "run")
        ):
            raise OptionsError(
                f"scheduler must be a scheduler name or an object with a run() method, "
                f"got {self.scheduler!r}"
            )
        _check_dask_client(self.dask_client)

    def __getstate__(self) -> dict[str, Any]:
        # the hook table caches bound methods and adapters: a copy rebuilds its own
        return {k: v for k, v in self.__dict__.items() if k != "_hook_table"}

    def replace(self, **overrides: Any) -> ExecutionOptions:
        """A copy with `overrides` applied; unknown names raise `OptionsError`."""
        check_option_names(overrides)
        return dataclasses.replace(self, **overrides)


_FIELDS = frozenset(f.name for f in dataclasses.fields(ExecutionOptions))


def check_option_names(overrides: dict[str, Any]) -> None:
    """Raise `OptionsError` naming any key that is not an `ExecutionOptions` field."""
    unknown = sorted(set(overrides) - _FIELDS)
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, _FIELDS, n=1)
        hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    raise OptionsError(
        f"unknown execution option {', '.join(hints)}; valid options are "
        f"{', '.join(sorted(_FIELDS))}"
    )


def _check_positive_int(name: str, value: Any) -> None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise OptionsError(f"{name} must be a positive int or None, got {value!r}")


def _is_duration(value: Any) -> bool:
    """A real number of seconds that `threading` can wait for: not a bool, NaN or inf."""
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and -threading.TIMEOUT_MAX <= value <= threading.TIMEOUT_MAX  # False for NaN
    )


def _check_positive_number(name: str, value: Any) -> None:
    if value is not None and (not _is_duration(value) or value <= 0):
        hint = "; for no limit pass None" if value == math.inf else ""
        raise OptionsError(
            f"{name} must be a finite positive number of seconds, or None for no limit, "
            f"got {value!r}{hint}"
        )


def _check_dask_client(value: Any) -> None:
    if value is None or (isinstance(value, str) and value) or hasattr(value, "submit"):
        return
    raise OptionsError(
        f"dask_client must be a distributed.Client, a scheduler address such as "
        f"'tcp://scheduler-host:port', or None, got {value!r}"
    )


def _as_hooks(value: Any) -> tuple[Any, ...]:
    """`hooks` as a tuple; each hook must implement at least one `on_*` event."""
    if value is None:
        return ()
    if _events_of(value):
        hooks: tuple[Any, ...] = (value,)
    else:
        try:
            hooks = tuple(value)
        except TypeError:
            raise OptionsError(
                f"hooks must be a sequence of ExecutionHooks, got {value!r}"
            ) from None
    for hook in hooks:
        if not _events_of(hook):
            raise OptionsError(
                f"hook {hook!r} implements no event (no on_* method); subclass "
                "ember_xcs.ExecutionHooks and override the events you need"
            )
    return hooks


def _events_of(hook: Any) -> list[str]:
    if isinstance(hook, str | bytes):
        return []
    return [
        name for name in dir(type(hook)) if name.startswith("on_") and callable(getattr(hook, name))
    ]


NODE_EVENTS = ("on_node_start", "on_node_end", "on_node_failure")


def node_hook_calls(options: ExecutionOptions, *, thread: str | None = None) -> tuple[Any, ...]:
    """`(starts, ends, failures, timed, log, ticks)`: a run's node hooks, as the positional
    calls `NodeCall` makes, the log it records into and the counters it ticks. The engine
    asks once per run, on the thread that starts the run.

    The calls carry the attempt's `time.perf_counter()` instants, so a hook need not read
    the clock or remember when an attempt started:

    - `start(node_id, name, attempt)`, just before the operator is called;
    - `end(node_id, name, attempt, start, end)`, after it returned;
    - `failure(node_id, name, attempt, start, end, error, will_retry)`, after it raised.

    Reading the clock is most of what calling a hook costs (~0.1 µs a read here), so
    `end` is read only when there are end or failure calls or a log, and `start` only
    when `timed`: when one of them uses it (otherwise it is 0.0).

    A hook's public `on_node_*` methods take keyword arguments; each gets a one-line
    adapter (`seconds` is `end - start`). A hook class may offer a positional twin instead
    by marking the method `positional(twin)`: `twin` names a method, or a property, read
    as each run starts, that gives the run's call, or None for no call in that run;
    `positional(None)` means the event needs no call at all (the others carry what it
    would have recorded), and `positional(twin, start=False)` that the twin ignores
    `start`. The marks count only when every live node method of the hook carries one:
    a subclass that overrides one of them with a plain keyword method gets keyword calls
    for all three, so its `super()` calls see the events they expect. Everything but the
    properties is looked up once per options object.

    **A log instead of calls.** A recorder that only stores what the engine already knows
    (`Timeline`) marks its end method `positional(twin, log="attribute")`, naming a list:
    `NodeCall` then extends that list with each attempt's fields, `(node_id, name, start,
    end, thread, attempt)` (`thread`: the name of the thread that ran it), where a failed
    attempt's `attempt` is `(attempt, error, will_retry)` (`error`: the exception's type
    name), and calls neither the hook's end nor its failure twin. That is one C call per
    attempt and no Python frame or kept tuple: a third fewer instructions per recorded
    node than the twin's call (see `benchmarks/RESULTS.md`, "Observability overhead").
    `log` is `(extend, thread)`: `thread`, when given, names the thread every node of the
    run runs on (an executor that runs calls on the caller's thread), so the node call
    need not look it up per attempt. One hook per run gets the log; another one that asks
    for one (a second `Timeline`) gets its twins called as usual.

    **A tick instead of a call.** A counter that needs to know only that a node finished
    (`ProgressHooks`) marks its end method `positional(twin, tick=True)`: the twin gives
    a callable taking no arguments, best a C one (`itertools.count().__next__`), and
    `NodeCall` calls it once per node that finished for good (it returned, or failed
    without a retry to follow) and reads no clock for it. Such a hook marks its failure
    method `positional(None)`.
    """
    table = options.__dict__.get("_hook_table")
    found = table.get("node events") if table is not None else None
    if found is None:
        found = _hook_table(options)["node events"] = _node_targets(options.hooks)
    calls, per_run, log = found
    starts, ends, failures, ticks, timed = _resolve(calls) if per_run else calls
    if log is None:
        return starts, ends, failures, timed, None, ticks
    return starts, ends, failures, True, (log, thread), ticks  # a log records the start


def positional(
    twin: str | None, *, start: bool = True, log: str | None = None, tick: bool = False
) -> Any:
    """Mark a hook's `on_node_*` method as having a positional twin (see
    `node_hook_calls`): the name of a method or property that gives the positional call,
    or None when the event needs no call; `start=False` if the twin ignores `start`;
    `log` (on `on_node_end`) names the list the engine records every attempt into instead
    of calling the end and failure twins; `tick=True` (on `on_node_end`) that the twin
    takes no arguments and is called once per node that finished for good."""

    def mark(method: Any) -> Any:
        method.__xcs_positional__ = (twin, start, log, tick)
        return method

    return mark


# a node event's target: (call, None, uses start) or (hook, property to read per run, ...)
_Target = tuple[Any, str | None, bool]


def _node_targets(hooks: tuple[Any, ...]) -> tuple[Any, bool, Any]:
    """The node calls of `hooks` (starts, ends, failures, ticks), or, when some twin is a
    property to read per run, their targets (then True); and the log's `extend`, or None."""
    targets: tuple[list[_Target], ...] = ([], [], [], [])
    log = None
    for hook in hooks:
        methods = [_live_method(hook, event) for event in NODE_EVENTS]
        marked = all(m is None or hasattr(m, "__xcs_positional__") for m in methods)
        logged = False
        if marked and methods[1] is not None and log is None:
            log_name = methods[1].__xcs_positional__[2]
            if log_name is not None:
                log, logged = getattr(hook, log_name).extend, True
        for k, method in enumerate(methods):
            if method is None or (logged and k > 0):  # the log records ends and failures
                continue
            if not marked:  # only a keyword end hook's `seconds` needs the start
                targets[k].append((_KEYWORD_ADAPTERS[k](method), None, k == 1))
                continue
            twin, uses_start, _, tick = method.__xcs_positional__
            if twin is None:
                continue
            kind = 3 if tick else k
            if isinstance(getattr(type(hook), twin, None), property):
                targets[kind].append((hook, twin, uses_start and not tick))
            else:
                targets[kind].append((getattr(hook, twin), None, uses_start and not tick))
    per_run = any(twin for event in targets for _, twin, _ in event)
    return (targets if per_run else _resolve(targets)), per_run, log


def _resolve(targets: tuple[list[_Target], ...]) -> tuple[Any, ...]:
    """`(starts, ends, failures, ticks, timed)` from targets, reading the per-run
    properties."""
    calls: tuple[list[Any], ...] = ([], [], [], [])
    timed = False
    for k, event_targets in enumerate(targets):
        for owner, twin, uses_start in event_targets:
            call = getattr(owner, twin) if twin else owner
            if call is not None:
                calls[k].append(call)
                timed = timed or uses_start
    return tuple(calls[0]), tuple(calls[1]), tuple(calls[2]), tuple(calls[3]), timed


def _live_method(hook: Any, event: str) -> Any:
    """`hook`'s bound `event` method, or None if it has none or it is a base-class no-op."""
    method = getattr(hook, event, None)
    if method is None or not callable(method) or getattr(method, "__xcs_noop__", False):
        return None
    return method


# A keyword method behind a positional node call: one extra call (~60 ns), no more.


def _keyword_start(method: Any) -> Any:
    def call(node_id: str, name: str, attempt: int) -> None:
        method(node_id=node_id, name=name, attempt=attempt)

    return call


def _keyword_end(method: Any) -> Any:
    def call(node_id: str, name: str, attempt: int, start: float, end: float) -> None:
        method(node_id=node_id, name=name, seconds=end - start)

    return call


def _keyword_failure(method: Any) -> Any:
    def call(
        node_id: str, name: str, attempt: int, start: float, end: float, error: Any, retry: bool
    ) -> None:
        method(node_id=node_id, name=name, error=error, attempt=attempt, will_retry=retry)

    return call


_KEYWORD_ADAPTERS = (_keyword_start, _keyword_end, _keyword_failure)


def hook_calls(options: ExecutionOptions, event: str) -> tuple[Any, ...]:
    """The bound `event` methods of `options.hooks` that do something, computed once per
    options object and event.

    The one place hooks are looked up: a hook may implement any subset of the events, and
    `ExecutionHooks`' inherited no-op defaults (marked `__xcs_noop__`) are left out, so an
    event nobody listens to costs one dict lookup. Node events reach `NodeCall` through
    `node_hook_calls`, which calls the same methods positionally.
    """
    table = _hook_table(options)
    calls = table.get(event)
    if calls is None:
        calls = table[event] = tuple(
            method for hook in options.hooks if (method := _live_method(hook, event)) is not None
        )
    return calls


def _hook_table(options: ExecutionOptions) -> dict[str, Any]:
    """The per-options cache of hook calls (not pickled: it is rebuilt on first use)."""
    table = options.__dict__.get("_hook_table")
    if table is None:
        table = {}
        object.__setattr__(options, "_hook_table", table)
    return table


# `scheduling` draws the bar and registers how to make its hook here on import: options
# sit below scheduling in the layers, so they cannot import it.
_progress_factory: Any = None


def register_progress_hooks(factory: Any) -> None:
    """Called once by `ember_xcs.scheduling._progress`: how `progress=` makes its hook."""
    global _progress_factory
    _progress_factory = factory


def _with_progress(hooks: tuple[Any, ...], progress: Any) -> tuple[Any, ...]:
    if not isinstance(progress, bool) and (not _is_duration(progress) or progress < 0):
        raise OptionsError(
            f"progress must be True, False or a delay in seconds >= 0, got {progress!r}"
        )
    # replace() hands back the hook this field added: drop it, then add what it says now
    hooks = tuple(h for h in hooks if not getattr(h, "added_by_progress_option", False))
    return hooks if progress is False else (*hooks, _progress_factory(progress))


# The names `graph_passes` accepts, in the order `"all"` applies them: culling first
# leaves less to compare, and merging before folding folds each merged node once.
GRAPH_PASSES = ("eliminate_dead_nodes", "merge_common_subexpressions", "fold_constants")


def _as_graph_passes(value: Any) -> tuple[str, ...]:
    if value == "all":
        return GRAPH_PASSES
    names = (value,) if isinstance(value, str) else value
    try:
        names = tuple(dict.fromkeys(names))
    except TypeError:
        names = (value,)
    unknown = [n for n in names if n not in GRAPH_PASSES]
    if unknown:
        hints = [
            f"{n!r}" + (f" (did you mean {c[0]!r}?)" if (c := _close(n)) else "") for n in unknown
        ]
        raise OptionsError(
            f"unknown graph pass {', '.join(hints)}; graph_passes takes names from "
            f"{', '.join(GRAPH_PASSES)}, or 'all'"
        )
    return names


_PASS_JARGON = {"dce": 0, "cse": 1, "constant_folding": 2, "fold": 2, "merge": 1}


def _close(name: Any) -> list[str]:
    if not isinstance(name, str):
        return []
    if name.lower() in _PASS_JARGON:
        return [GRAPH_PASSES[_PASS_JARGON[name.lower()]]]
    return difflib.get_close_matches(name, GRAPH_PASSES, n=1)


def _as_exception_types(value: Any) -> tuple[type[BaseException], ...]:
    try:
        types = (value,) if isinstance(value, type) else tuple(value)
    except TypeError:
        raise OptionsError(
            f"retry_on must be an exception type or a tuple of them, got {value!r}"
        ) from None
    for t in types:
        if not (isinstance(t, type) and issubclass(t, BaseException)):
            raise OptionsError(f"retry_on must hold exception types, got {t!r}")
    return types


# --- environment ---------------------------------------------------------------------

_ENV_PARSERS = {
    "EMBER_XCS_SCHEDULER": ("scheduler", str),
    "EMBER_XCS_MAX_WORKERS": ("max_workers", int),
    "EMBER_XCS_TIMEOUT_SECONDS": ("timeout_seconds", float),
    "EMBER_XCS_RETRIES": ("retries", int),
}
_env_defaults: ExecutionOptions | None = None
# field -> (variable, raw text) for each field the environment set in `_env_defaults`
_env_sources: dict[str, tuple[str, str]] = {}


def _invalid_variable(var: str, raw: str, field: str, detail: str = "") -> OptionsError:
    return OptionsError(
        f"environment variable {var}={raw!r} is not a valid {field}{detail}; fix or unset it"
    )


def _options_from_env() -> tuple[ExecutionOptions, dict[str, tuple[str, str]]]:
    values: dict[str, Any] = {}
    sources: dict[str, tuple[str, str]] = {}
    for var, (field, parse) in _ENV_PARSERS.items():
        raw = os.environ.get(var)
        if raw is None or raw == "":
            continue
        try:
            values[field] = parse(raw)
            ExecutionOptions(**{field: values[field]})
        except (ValueError, OptionsError) as exc:
            detail = f": {exc}" if isinstance(exc, OptionsError) else ""
            raise _invalid_variable(var, raw, field, detail) from None
        sources[field] = (var, raw)
    return ExecutionOptions(**values), sources


def env_defaults() -> ExecutionOptions:
    """Defaults from `EMBER_XCS_*` variables, read once and validated."""
    global _env_defaults, _env_sources
    if _env_defaults is None:
        _env_defaults, _env_sources = _options_from_env()
    return _env_defaults


def reload_env_defaults() -> ExecutionOptions:
    """Read the `EMBER_XCS_*` variables again (for tests and long-lived processes)."""
    global _env_defaults
    _env_defaults = None
    return env_defaults()


def blame_environment(field: str, value: Any, error: OptionsError) -> OptionsError:
    """`error` about `value` of `field`, restated to name the environment variable when
    the environment set `field` to `value`; else `error` itself.

    For checks that can only run later than the environment is read: a scheduler name is
    looked up when a run starts, so one registered after the first read still counts.
    """
    var, raw = _env_sources.get(field, (None, None))
    if var is None or _env_defaults is None or getattr(_env_defaults, field) != value:
        return error
    return _invalid_variable(var, raw, field, f": {error}")


# --- context -------------------------------------------------------------------------

_current: ContextVar[ExecutionOptions | None] = ContextVar("ember_xcs_options", default=None)


def current_options() -> ExecutionOptions:
    """The options in force here: innermost `execution_options` block, else env defaults."""
    options = _current.get()
    return options if options is not None else env_defaults()


def set_current_options(options: ExecutionOptions) -> Token[ExecutionOptions | None]:
    """Make `options` current in this context (the engine does this around each node call,
    so an operator, or a nested jit call, sees the options of the run it belongs to).
    Undo with `reset_current_options(token)`."""
    return _current.set(options)


def options_are_current(options: ExecutionOptions) -> bool:
    """True when `options` (this very object) is current here; cheaper than setting it."""
    current = _current.get()
    return current is options or (current is None and options is _env_defaults)


def reset_current_options(token: Token[ExecutionOptions | None]) -> None:
    """Undo one `set_current_options`."""
    _current.reset(token)


def resolve_options(explicit: ExecutionOptions | None) -> ExecutionOptions:
    """Explicit options beat the context, which beats the environment."""
    if explicit is not None:
        if not isinstance(explicit, ExecutionOptions):
            raise OptionsError(
                f"options must be an ExecutionOptions, got {type(explicit).__name__}; write "
                "options=ExecutionOptions(...) or use `with execution_options(...):`"
            )
        return explicit
    return current_options()


class execution_options:  # noqa: N801 - used as a function: `with execution_options(...):`
    """Set execution options for the enclosed block; blocks nest and restore on exit.

    !!! example
        ```python
        @xcs.op
        def ask(question: str) -> str:
            return question.upper()

        pipeline = xcs.jit(lambda q: [ask(q), ask(q + "!")])
        with xcs.execution_options(scheduler="parallel", max_workers=8):
            result = pipeline("why")
        assert result == ["WHY", "WHY!"]
        ```

    The options live in a `ContextVar`: they are per thread and per asyncio task, restored
    on exit even when the block raises, and copied into the engine's worker threads. The
    overrides apply on top of the options in force where the block is entered.

    Inside a jitted function's body, a block reaches the leaf calls made in it. The fields
    that govern one call (`hooks`, `retries`, `retry_backoff`, `retry_on`,
    `node_timeout_seconds`) apply to each call made in the block, wherever and whenever
    it runs. The fields that govern a run (`scheduler`, `max_workers`, `timeout_seconds`,
    `return_partial_results`, `include_intermediates`, `dask_client`, `progress`,
    `graph_passes`) leave the run under way alone: a jitted function called from the
    body joins that run; a graph or jitted function that a leaf called in the block runs
    is a run of its own, under the block's options. A class rather than a
    `contextlib.contextmanager`, so jit can tell such a block apart: it never looks at an
    exception, so the calls in it overlap, and the block's end waits for them.
    """

    __slots__ = ("_overrides", "_tokens")

    def __init__(self, **overrides: Any):
        self._overrides = overrides
        self._tokens: list[Token[ExecutionOptions | None]] = []

    def __enter__(self) -> ExecutionOptions:
        options = current_options().replace(**self._overrides)
        self._tokens.append(_current.set(options))
        return options

    def __exit__(self, *exc_info: Any) -> None:
        _current.reset(self._tokens.pop())
