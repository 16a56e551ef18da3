"""The Dask executor: the engine loop submitting `NodeCall`s to a `distributed.Client`.

The engine stays in this process, so dependency tracking, priorities, timeouts and
partial results behave exactly as with threads; Dask only decides where each call runs.
Arguments are bound here and shipped with the call, so a worker needs the operator (it
must be picklable by cloudpickle when the cluster uses processes) and its inputs, never
the whole run. Hooks fire where the node runs: in this process for
`Client(processes=False)`, in the worker process otherwise.
"""

from __future__ import annotations

import uuid
from typing import Any

from .._errors import OptionsError
from .._options import ExecutionOptions
from ._executors import Done
from ._node_call import NodeCall

__all__ = ["DaskExecutor"]


def _import_distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise OptionsError(
            "scheduler='dask' needs Dask distributed: pip install 'ember_xcs[dask]'"
        ) from None
    return distributed


class DaskExecutor:
    """Runs node calls as Dask futures; results come back through future callbacks."""

    capacity = None

    def __init__(self, options: ExecutionOptions):
        distributed = _import_distributed()
        client = options.dask_client
        self._owned = False
        if client is None:
            try:
                client = distributed.get_client()
            except ValueError:
                raise OptionsError(
                    "scheduler='dask' found no Dask client: create one with "
                    "distributed.Client(...) or pass execution_options(dask_client=...)"
                ) from None
        elif isinstance(client, str):
            client = distributed.Client(client)
            self._owned = True
        self._client = client
        self._run_id = uuid.uuid4().hex[:8]

    def submit(self, index: int, call: NodeCall, done: Done) -> None:
        future = self._client.submit(
            _call_remote, call, pure=False, key=f"{call.node_id}-{self._run_id}-{index}"
        )
        future.add_done_callback(lambda f: done.put(_future_outcome(index, f)))

    def close(self) -> None:
        if self._owned:
            self._client.close()


def _call_remote(call: NodeCall) -> tuple[bool, Any]:
    # Return the exception as a value: Dask would otherwise re-raise it with its own
    # traceback handling, and the engine wants the node-naming error intact.
    try:
        return True, call()
    except BaseException as exc:  # noqa: BLE001
        return False, exc


def _future_outcome(index: int, future: Any) -> tuple[int, bool, Any]:
    if future.status == "finished":
        ok, value = future.result()
        return index, ok, value
    try:
        exc = future.exception()
    except BaseException as err:  # noqa: BLE001 - cancelled futures raise here
        exc = err
    return index, False, exc
