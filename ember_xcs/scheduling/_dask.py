"""The Dask executor: the engine loop submitting `NodeCall`s to a `distributed.Client`.

The `"dask"` scheduler uses it only where the plan cannot go to Dask as one graph
(`_dask_graph`): a run with `max_workers`, and a jitted body's dynamic run, whose graph
is discovered call by call. The client helpers (`dask_client`, `picklable_error`) serve
both.

The engine stays in this process, so dependency tracking, priorities, timeouts and
partial results behave exactly as with threads; Dask only decides where each call runs.
Arguments are bound here and shipped with the call, so a worker needs the operator and
its inputs, never the whole run.

Dask serialises every task, even for an in-process `Client(processes=False)`. So:

- when the cluster lives in this process (its scheduler address is `inproc://`), the
  task carries only a key into a table of this process's pending calls, and the worker
  runs the very `NodeCall` the engine made: operators need not be picklable, closures
  over locks and shared state work, and hooks fire live on the worker thread;
- otherwise the call itself is shipped (operators must be picklable by cloudpickle), with
  the options' client removed and the hooks replaced, on the worker, by `TopicHooks`,
  which send each node event live through a Dask topic (`Worker.log_event`); an
  `EventRelay` subscribed here (`Client.subscribe_topic`) calls the run's hooks as each
  event arrives, with the worker's timings. The `_dask_graph` path uses the same two.
  A run made inside a shipped node sees the `TopicHooks` as its current options' hooks,
  so its nodes' events are sent too, marked nested (the worker counts the attempts in
  progress); the relay delivers them with `RELAYED` saying which (a progress bar counts
  only the run's own nodes), and waits only for the run's own nodes' last events.
  A worker sends a node's events before its result, and the scheduler forwards both to
  the client in that order, so the engine sees a node finish after its hooks did. An
  error's `__cause__`, which pickling drops, is shipped beside it and re-attached.
"""

from __future__ import annotations

import itertools
import pickle
import socket
import threading
import uuid
from typing import Any

from .._errors import ExecutionError, OptionsError
from .._options import ExecutionOptions, hook_calls
from ._executors import Done
from ._hooks import RELAYED
from ._node_call import NodeCall

__all__ = [
    "DaskExecutor",
    "EventRelay",
    "TopicHooks",
    "call_outcome",
    "dask_client",
    "picklable_error",
]

# key -> a call waiting for an in-process worker
_local_calls: dict[str, NodeCall] = {}
_local_lock = threading.Lock()
_run_ids = itertools.count()


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise OptionsError(
            "scheduler='dask' needs Dask distributed: pip install 'ember_xcs[dask]'"
        ) from None
    return distributed


# Dask's own connect timeout is 30 s, retried; a wrong address should say so sooner
CONNECT_TIMEOUT_S = 5.0


def _connect(distributed: Any, address: str) -> Any:
    """A client of the scheduler at `address`, or an `ExecutionError` naming the address.

    A TCP address is probed first, so a refused connection (nothing listens there) fails
    in milliseconds; a silent one fails after `CONNECT_TIMEOUT_S`.
    """
    try:
        scheme, location = distributed.comm.parse_address(address)
        if scheme == "tcp":
            host, port = distributed.comm.parse_host_port(location)
            socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
        return distributed.Client(address, set_as_default=False, timeout=CONNECT_TIMEOUT_S)
    except Exception as exc:  # refused, timed out, a bad address, or not Dask at all
        raise ExecutionError(
            f"dask_client={address!r}: cannot connect to a Dask scheduler there "
            f"({type(exc).__name__}: {exc}); start one (`dask scheduler`) or fix the address"
        ) from None


def dask_client(options: ExecutionOptions) -> tuple[Any, bool]:
    """The client `options` name (or the current one), and whether the caller opened it
    (a scheduler address) and must close it."""
    distributed = _import_distributed()
    client = options.dask_client
    if client is None:
        try:
            return distributed.get_client(), False
        except ValueError:
            raise OptionsError(
                "scheduler='dask' found no Dask client: create one with "
                "distributed.Client(...) or pass execution_options(dask_client=...)"
            ) from None
    if isinstance(client, str):
        return _connect(distributed, client), True
    return client, False


class DaskExecutor:
    """Runs node calls as Dask futures; results come back through future callbacks."""

    capacity = None

    def __init__(self, options: ExecutionOptions):
        client, self._owned = dask_client(options)
        self._client = client
        self._run_id = f"{uuid.uuid4().hex[:8]}{next(_run_ids)}"
        self._in_process = str(client.scheduler.address).startswith("inproc://")
        self._options = options
        self._keys: list[str] = []
        scheduler = options.scheduler if isinstance(options.scheduler, str) else "auto"
        self._shipped = options.replace(
            scheduler=scheduler, dask_client=None, hooks=(), progress=False
        )
        # on a cluster, workers send node events live through a topic (`TopicHooks`)
        self._events = EventRelay(options) if options.hooks and not self._in_process else None
        self._topic = (
            self._events.subscribe(client, f"ember-xcs-{self._run_id}") if self._events else None
        )

    def submit(self, index: int, call: NodeCall, done: Done) -> None:
        key = f"{call.node_id}-{self._run_id}-{index}"
        if self._in_process:
            with _local_lock:
                _local_calls[key] = call
            future = self._client.submit(_run_local, key, pure=False, key=key)
            self._keys.append(key)
        else:
            shipped = (call.node_id, call.name, call.operator, call.args, call.kwargs)
            future = self._client.submit(
                _run_shipped,
                shipped,
                self._shipped,
                call.is_async,
                self._topic,
                pure=False,
                key=key,
            )
        future.add_done_callback(lambda f: done.put(self._outcome(index, f)))

    def close(self) -> None:
        with _local_lock:  # calls a timed-out run never started must not linger
            for key in self._keys:
                _local_calls.pop(key, None)
        if self._events is not None:
            self._events.close(self._client)
        if self._owned:
            self._client.close()

    def _outcome(self, index: int, future: Any) -> tuple[int, bool, Any]:
        if future.status == "finished":
            ok, value, cause = future.result()
            if cause is not None:
                value.__cause__ = cause
            return index, ok, value
        try:
            exc = future.exception()
        except BaseException as err:  # noqa: BLE001 - cancelled futures raise here
            exc = err
        return index, False, exc


def _run_local(key: str) -> tuple[bool, Any, None]:
    with _local_lock:
        call = _local_calls.pop(key, None)
    if call is None:  # its run timed out before a worker got to it: do nothing
        return False, RuntimeError(f"{key}: the run gave up on this call"), None
    ok, value = call_outcome(call)
    return ok, value, None


def _run_shipped(
    fields: tuple[Any, ...], options: ExecutionOptions, is_async: bool, topic: str | None
) -> tuple[bool, Any, BaseException | None]:
    if topic is not None:  # the run's hooks are on the client: send them each event live
        options = options.replace(hooks=(TopicHooks(topic),))
    ok, value = call_outcome(NodeCall(*fields, options, is_async))
    # pickling an exception drops its __cause__, which is the user's original error
    cause = picklable_error(value.__cause__) if not ok and value.__cause__ is not None else None
    return ok, value, cause


def picklable_error(exc: BaseException) -> BaseException:
    """`exc`, or where it cannot be pickled, a `RuntimeError` with its type and message."""
    try:
        pickle.dumps(exc)
    except Exception:  # noqa: BLE001 - keep at least its type and message
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc


def call_outcome(call: NodeCall) -> tuple[bool, Any]:
    """`(True, output)` or `(False, the exception)`: an exception returned as a value, so
    Dask (or a waiting task) does not re-raise it with its own traceback handling and the
    node-naming error stays intact."""
    try:
        return True, call()
    except BaseException as exc:  # noqa: BLE001
        return False, exc


# --- hook events from cluster workers, live (the engine loop's executor and `_dask_graph`) ---

_EVENTS_WAIT_S = 10.0  # how long the end of a run waits for a cluster's last hook events


class TopicHooks:
    """Stands in for a run's hooks on a cluster worker: sends each node event, with the
    keyword arguments the run's own hooks take, to the client through a Dask topic."""

    def __init__(self, topic: str):
        from distributed import get_worker

        self.topic, self.worker = topic, get_worker()
        # attempts running: the shipped node's own, then those of runs made inside it
        # (they see these hooks as the current options'), which are sent marked nested
        self._depth = 0
        self._lock = threading.Lock()

    def _send(self, method: str, kwargs: dict[str, Any], nested: bool) -> None:
        if "error" in kwargs:
            kwargs["error"] = picklable_error(kwargs["error"])
        self.worker.log_event(self.topic, pickle.dumps((method, kwargs, nested)))

    def on_node_start(self, **kwargs: Any) -> None:
        with self._lock:
            nested = self._depth > 0
            self._depth += 1
        self._send("on_node_start", kwargs, nested)

    def on_node_end(self, **kwargs: Any) -> None:
        self._send("on_node_end", kwargs, self._ended())

    def on_node_failure(self, **kwargs: Any) -> None:  # a retry starts a new attempt
        self._send("on_node_failure", kwargs, self._ended())

    def _ended(self) -> bool:
        """An attempt ended; was it a nested run's?"""
        with self._lock:
            self._depth -= 1
            return self._depth > 0


class EventRelay:
    """Delivers hook events sent by cluster workers (`TopicHooks`) as they arrive."""

    def __init__(self, options: ExecutionOptions):
        self.options = options
        self.topic: str | None = None
        self.terminal = 0  # nodes whose last event (end, or a failure not retried) arrived
        self.arrived = threading.Condition()

    def subscribe(self, client: Any, token: str) -> str:
        self.topic = f"{token}-hooks"
        client.subscribe_topic(self.topic, self._deliver)
        return self.topic

    def _deliver(self, event: tuple[float, bytes]) -> None:
        method, kwargs, nested = pickle.loads(event[1])
        token = RELAYED.set("nested" if nested else "run")
        try:
            for hook in hook_calls(self.options, method):
                hook(**kwargs)
        finally:
            RELAYED.reset(token)
        if nested:  # the run waits for its own nodes' last events
            return
        if method == "on_node_end" or (method == "on_node_failure" and not kwargs["will_retry"]):
            with self.arrived:
                self.terminal += 1
                self.arrived.notify_all()

    def wait_for(self, nodes: int) -> None:
        with self.arrived:
            self.arrived.wait_for(lambda: self.terminal >= nodes, timeout=_EVENTS_WAIT_S)

    def close(self, client: Any) -> None:
        if self.topic is not None:
            client.unsubscribe_topic(self.topic)
