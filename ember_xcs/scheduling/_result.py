"""`ExecutionResult`: the outputs of a run, keyed by node id, plus what happened."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .._errors import XCSError
    from ..graph import PassReport
    from ._plan import ExecutionPlan

__all__ = ["ExecutionResult", "ExecutionStats"]


@dataclasses.dataclass(frozen=True)
class ExecutionStats:
    """Measured facts about one run; `graph_passes` is what the `graph_passes` option's
    passes did (nodes removed, merged, folded), `None` when none were asked for.
    `max_in_flight` is 0 where it is not observed (a plan run on a multi-process Dask
    cluster, whose workers' starts this process does not see)."""

    scheduler: str
    wall_seconds: float
    nodes_run: int
    max_in_flight: int
    graph_passes: PassReport | None = None


class ExecutionResult(dict[str, Any]):
    """Node id -> output: the sink nodes' outputs, or every completed node's when
    `include_intermediates=True` or when a partial result is returned.

    **Attributes:**

    - `failures`: node id -> the `XCSError` that node raised (empty on success).
    - `skipped`: ids of nodes never run because something they depend on failed.
    - `stats`: an `ExecutionStats` (wall time, nodes run, in-flight peak).
    - `plan`: the `ExecutionPlan` that ran (the only content of a `"noop"` dry run).
    - `by_index`: every node's output by plan index (unfinished nodes hold a sentinel),
      for callers that built the plan themselves and address nodes by index (jit).
    """

    def __init__(
        self,
        outputs: dict[str, Any],
        *,
        plan: ExecutionPlan,
        stats: ExecutionStats,
        failures: dict[str, XCSError] | None = None,
        skipped: list[str] | None = None,
        by_index: list[Any] | None = None,
    ):
        super().__init__(outputs)
        self.plan = plan
        self.stats = stats
        self.failures = failures or {}
        self.skipped = skipped or []
        self.by_index = by_index

    @property
    def ok(self) -> bool:
        """True when every node ran and succeeded."""
        return not self.failures and not self.skipped
