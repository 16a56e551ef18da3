"""`ember-xcs run module:attribute`: run a graph or callable from a shell, answer in JSON.

For workflow tools (Airflow, Prefect, cron): the target is imported, run once with the
inputs and options given, and one JSON object is printed on stdout; the exit status says
what happened:

| exit | status | meaning |
|---|---|---|
| 0 | `"ok"` | every node (or the call) succeeded |
| 2 | `"bad_input"` | the target, the inputs or an option is wrong; nothing ran |
| 3 | `"failed"` | a node (or the called function) raised |
| 4 | `"timeout"` | `--timeout` passed before the run finished |

The target may be a `Graph`, a jitted function, an `Operator` instance or a plain
function. A graph gets the inputs as `execute_graph`'s `inputs`; a callable gets a JSON
object as keyword arguments and a JSON array as positional arguments. Everything the
target prints goes to stderr, so stdout holds the JSON alone.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import importlib.util
import inspect
import json
import math
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ._errors import ExecutionTimeoutError, GraphError, OptionsError, XCSError, with_article
from ._jit import get_jit_strategy_used
from ._options import (
    ExecutionOptions,
    current_options,
    reset_current_options,
    set_current_options,
)
from .graph import Graph
from .operators import Operator
from .scheduling import Timeline, execute_graph

__all__ = ["EXIT_BAD_INPUT", "EXIT_FAILED", "EXIT_OK", "EXIT_TIMEOUT", "add_run_parser", "run"]

EXIT_OK, EXIT_BAD_INPUT, EXIT_FAILED, EXIT_TIMEOUT = 0, 2, 3, 4
_STATUS = {
    EXIT_OK: "ok",
    EXIT_BAD_INPUT: "bad_input",
    EXIT_FAILED: "failed",
    EXIT_TIMEOUT: "timeout",
}


_REPORT_KEYS = (
    "kind",
    "jit_strategy",
    "result",
    "failures",
    "skipped",
    "error",
    "stats",
    "timings",
)


class BadInput(Exception):
    """The command line, the target or the inputs are wrong (exit 2)."""


def add_run_parser(sub: Any) -> None:
    """Add the `run` subcommand to the `ember-xcs` parser."""
    p = sub.add_parser(
        "run",
        help="run a Graph, jitted function or Operator; print results as JSON",
        description="Run a Graph, jitted function, Operator or function once; print one JSON "
        "object (results, failures, stats, timings) on stdout.",
        epilog="exit status: 0 ok, 2 bad input (nothing ran), 3 a node or the call failed, "
        "4 --timeout passed",
    )
    p.add_argument("target", help="module:attribute, or path/to/file.py:attribute")
    p.add_argument(
        "inputs",
        nargs="?",
        default=None,
        help="inputs as JSON, or @file.json (@- reads stdin); default: none",
    )
    p.add_argument("--scheduler", help="sequential, parallel, wave, noop (dry run), dask, ...")
    p.add_argument("--max-workers", type=int, help="cap on nodes in flight")
    p.add_argument("--timeout", type=float, help="seconds for the whole run (exit 4 past it)")
    p.add_argument("--retries", type=int, help="extra attempts for a failing node")
    p.add_argument(
        "--partial",
        action="store_true",
        help="on a node failure, finish the other nodes and report their results",
    )
    p.add_argument(
        "--graph-passes", help="comma-separated graph passes for a Graph target, or 'all'"
    )
    p.add_argument("--outputs", help="comma-separated node ids to return (a Graph target)")
    p.add_argument("--indent", type=int, default=None, help="pretty-print the JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run `args.target` and print the JSON report; returns the exit status."""
    stdout = sys.stdout  # the target's prints go to stderr while it runs, maybe after this
    started = time.perf_counter()
    try:
        report, code = _run(args)
    except BadInput as exc:
        report, code = {"error": {"type": "BadInput", "message": str(exc)}}, EXIT_BAD_INPUT
    report["timings"] = {
        "total_seconds": time.perf_counter() - started,
        **report.get("timings", {}),
    }
    report = {"target": args.target, "status": _STATUS[code]} | {
        key: report[key] for key in _REPORT_KEYS if key in report
    }
    print(json.dumps(_plain(report), indent=args.indent), file=stdout, flush=True)
    return code


def _run(args: argparse.Namespace) -> tuple[dict[str, Any], int]:
    options = _options(args)
    with contextlib.redirect_stdout(sys.stderr):  # what the module prints on import
        target = load_target(args.target)
    inputs = read_inputs(args.inputs)
    outputs = _split(args.outputs)
    timeline = Timeline()
    options = options.replace(hooks=(*options.hooks, timeline))
    if isinstance(target, Graph):
        report, code = _run_graph(target, inputs, options, outputs)
    else:
        if outputs is not None or options.graph_passes:
            raise BadInput("--outputs and --graph-passes apply to a Graph target only")
        report, code = _run_callable(target, inputs, options)
    report["stats"].setdefault("nodes_run", len(timeline.records))
    report["stats"].setdefault("max_in_flight", timeline.max_concurrency())
    report["timings"] = {"nodes": [_record(r) for r in timeline.records]}
    return report, code


# --- the target and its inputs --------------------------------------------------------


def load_target(spec: str) -> Any:
    """Import `module:attribute` (or `file.py:attribute`); the attribute may be dotted."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise BadInput(
            f"target {spec!r} must be module:attribute, e.g. my_pipeline:graph or "
            "path/to/pipeline.py:graph"
        )
    module = _import(module_name)
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            known = ", ".join(n for n in dir(value) if not n.startswith("_"))[:200]
            raise BadInput(f"{module_name} has no attribute {attribute!r} (it has: {known})")
        value = getattr(value, part)
    if isinstance(value, type):
        raise BadInput(
            f"{spec} is a class; point at an instance (an Operator or a Graph) or a function"
        )
    if not isinstance(value, Graph) and not callable(value):
        raise BadInput(
            f"{spec} is {with_article(type(value).__name__)}; run takes a Graph, a jitted "
            "function, an Operator or a function"
        )
    return value


def _import(name: str) -> Any:
    if name.endswith(".py"):
        path = Path(name)
        if not path.is_file():
            raise BadInput(f"no file {name}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module  # dataclasses and pickling look modules up by name
        return _importing(name, lambda: spec.loader.exec_module(module) or module)
    if "" not in sys.path and str(Path.cwd()) not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: modules in the working directory
    return _importing(name, lambda: importlib.import_module(name))


def _importing(name: str, load: Callable[[], Any]) -> Any:
    try:
        return load()
    except ModuleNotFoundError as exc:
        if exc.name is not None and name.startswith(exc.name):
            raise BadInput(
                f"no module named {name!r} (looked in the working directory and sys.path); "
                "run from the folder that holds it or set PYTHONPATH"
            ) from None
        raise BadInput(f"importing {name} failed: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # the module's own code failed: it cannot be run
        raise BadInput(f"importing {name} failed: {type(exc).__name__}: {exc}") from None


def read_inputs(text: str | None) -> Any:
    """JSON from the argument, from `@file`, or from stdin for `@-`."""
    if text is None:
        return None
    source = "inputs"
    if text.startswith("@"):
        source = text[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
        except OSError as exc:
            raise BadInput(f"cannot read inputs from {source}: {exc.strerror}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            f"{source} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            """pass an object such as '{"question": "..."}' or @inputs.json"""
        ) from None


def _options(args: argparse.Namespace) -> ExecutionOptions:
    flags = {
        "scheduler": args.scheduler,
        "max_workers": args.max_workers,
        "timeout_seconds": args.timeout,
        "retries": args.retries,
        "return_partial_results": args.partial or None,
        "graph_passes": _split(args.graph_passes),
    }
    if flags["graph_passes"] == ("all",):
        flags["graph_passes"] = "all"
    try:  # flags beat EMBER_XCS_* variables, which beat the defaults
        return current_options().replace(**{k: v for k, v in flags.items() if v is not None})
    except OptionsError as exc:
        raise BadInput(str(exc)) from None


def _split(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(part.strip() for part in text.split(",") if part.strip())


# --- running ------------------------------------------------------------------------------

# Past --timeout the engine raises its own ExecutionTimeoutError, naming the nodes still
# running; the watchdog waits this much longer before it reports the run itself as late
# (an inline node, or a plain function, cannot be interrupted).
_WATCHDOG_GRACE_SECONDS = 1.0


class RunTimeout(Exception):
    """The watchdog's report: the run was still going past `--timeout` plus the grace."""


def _within_deadline(call: Callable[[], Any], timeout: float | None) -> Any:
    """`call()` on a daemon thread, so a call still running at the deadline cannot keep
    the process alive; raises what it raised, or `RunTimeout` when it did not finish."""
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with contextlib.redirect_stdout(sys.stderr):
                outcome["value"] = call()
        except BaseException as exc:  # handed to the caller's thread below
            outcome["error"] = exc

    worker = threading.Thread(target=work, name="ember-xcs-run", daemon=True)
    worker.start()
    worker.join(None if timeout is None else timeout + _WATCHDOG_GRACE_SECONDS)
    if worker.is_alive():
        raise RunTimeout(f"the run did not finish within --timeout {timeout} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def _run_graph(
    graph: Graph, inputs: Any, options: ExecutionOptions, outputs: Sequence[str] | None
) -> tuple[dict[str, Any], int]:
    if inputs is not None and not isinstance(inputs, dict):
        raise BadInput(
            f"a Graph takes a JSON object of inputs, got {type(inputs).__name__}; e.g. "
            """'{"question": "..."}'"""
        )
    report: dict[str, Any] = {"kind": "graph", "stats": {}}
    started = time.perf_counter()
    try:
        result = _within_deadline(
            lambda: execute_graph(graph, inputs, options=options, outputs=outputs),
            options.timeout_seconds,
        )
    except (GraphError, OptionsError) as exc:  # raised before any node runs
        raise BadInput(str(exc)) from None
    except (RunTimeout, XCSError) as exc:
        report["stats"]["wall_seconds"] = time.perf_counter() - started
        return {**report, "error": _error(exc)}, _failure_code(exc)
    stats = dataclasses.asdict(result.stats)
    if result.stats.graph_passes is not None:
        stats["graph_passes"] = result.stats.graph_passes.as_dict()
    failures = result.failures.values()
    code = EXIT_OK if result.ok else max(map(_failure_code, failures), default=EXIT_FAILED)
    return {
        **report,
        "result": dict(result),
        "failures": {node: _error(error) for node, error in result.failures.items()},
        "skipped": list(result.skipped),
        "stats": stats,
    }, code


def _run_callable(
    target: Callable[..., Any], inputs: Any, options: ExecutionOptions
) -> tuple[dict[str, Any], int]:
    args, kwargs = _call_arguments(target, inputs)

    def call() -> Any:
        token = set_current_options(options)  # what a jitted function's runs use
        try:
            return target(*args, **kwargs)
        finally:
            reset_current_options(token)

    report: dict[str, Any] = {"kind": "operator" if isinstance(target, Operator) else "function"}
    started = time.perf_counter()
    try:
        report["result"] = _within_deadline(call, options.timeout_seconds)
        code = EXIT_OK
    except Exception as exc:  # the target's own failure is the report's subject
        report["error"], code = _error(exc), _failure_code(exc)
    report["stats"] = {"wall_seconds": time.perf_counter() - started}
    strategy = get_jit_strategy_used(target)
    if strategy is not None:
        report["jit_strategy"] = str(strategy)
    return report, code


def _failure_code(error: BaseException) -> int:
    return EXIT_TIMEOUT if isinstance(error, RunTimeout | ExecutionTimeoutError) else EXIT_FAILED


def _call_arguments(target: Callable[..., Any], inputs: Any) -> tuple[list[Any], dict[str, Any]]:
    if inputs is None:
        args, kwargs = [], {}
    elif isinstance(inputs, dict):
        args, kwargs = [], inputs
    elif isinstance(inputs, list):
        args, kwargs = inputs, {}
    else:
        raise BadInput(
            f"inputs for a function are a JSON object (keyword arguments) or array "
            f"(positional arguments), got {type(inputs).__name__}"
        )
    try:
        inspect.signature(target).bind(*args, **kwargs)
    except TypeError as exc:
        raise BadInput(f"inputs do not fit {_name(target)}{_signature(target)}: {exc}") from None
    except ValueError:  # no signature to check against: the call itself will tell
        pass
    return list(args), kwargs


# --- JSON -------------------------------------------------------------------------------


def _error(error: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"type": type(error).__name__, "message": str(error)}
    node_id = getattr(error, "node_id", None)
    if node_id is not None:
        out["node_id"] = node_id
    cause = error.__cause__
    if cause is not None:
        out["cause"] = {"type": type(cause).__name__, "message": str(cause)}
    return out


def _record(record: Any) -> dict[str, Any]:
    return {
        "node_id": record.node_id,
        "name": record.name,
        "seconds": record.end - record.start,
        "attempt": record.attempt,
        "ok": record.ok,
    }


def _plain(value: Any) -> Any:
    """`value` as JSON data: arrays as lists, dataclasses as objects, tuples and sets as
    lists, keys as strings, non-finite floats as strings, anything else as its `repr`."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict):
        return {k if isinstance(k, str) else str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, set | frozenset):
        return [_plain(v) for v in sorted(value, key=repr)]
    if hasattr(value, "tolist"):  # NumPy and JAX arrays and scalars
        return _plain(value.tolist())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return repr(value)


def _name(target: Any) -> str:
    return getattr(target, "__name__", None) or getattr(target, "name", type(target).__name__)


def _signature(target: Any) -> str:
    try:
        return str(inspect.signature(target))
    except (TypeError, ValueError):
        return "(...)"
