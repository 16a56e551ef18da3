"""A `Timeline` as Chrome trace-event JSON, the format Perfetto and `chrome://tracing` read.

The format (the "Trace Event Format" document) is a JSON object with a `traceEvents`
list. We use two kinds of event:

- complete events, `{"ph": "X", "name", "ts", "dur", "pid", "tid", "cat", "args"}`, one
  per node attempt and one per run, with `ts` and `dur` in microseconds;
- metadata events, `{"ph": "M", "name": "process_name" | "thread_name", "args": {"name"}}`,
  which label the tracks.

**Tracks.** Complete events on one track must nest; they may not partly overlap. Sync
nodes on one worker thread never overlap, but `async def` nodes share the event loop's
thread and do, and a run overlaps the nodes of its own thread. So records are packed
into *lanes*: a record goes on the first lane of its thread whose last record ended
before it started, and each lane is a track (`ember-xcs-async`, `ember-xcs-async · 2`,
...). Runs get lanes of their own (`runs · MainThread`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["chrome_trace", "pack_lanes", "write_json"]

_US = 1e6


def pack_lanes(records: Iterable[Any], prefix: str = "") -> dict[int, tuple[int, str]]:
    """`id(record)` -> `(process, track name)`, so that records on a track never overlap.

    Records need `start`, `end`, `thread` and `process`. Lane 0 of a thread is named
    after the thread; further lanes get ` · 2`, ` · 3`, ...
    """
    lanes: dict[tuple[int, str], list[float]] = {}  # (process, thread) -> each lane's end
    placed: dict[int, tuple[int, str]] = {}
    for record in sorted(records, key=lambda r: (r.start, -r.end)):
        ends = lanes.setdefault((record.process, record.thread), [])
        lane = next((i for i, end in enumerate(ends) if end <= record.start), len(ends))
        if lane == len(ends):
            ends.append(record.end)
        else:
            ends[lane] = record.end
        name = f"{prefix}{record.thread}" + (f" · {lane + 1}" if lane else "")
        placed[id(record)] = (record.process, name)
    return placed


def chrome_trace(nodes: Sequence[Any], runs: Sequence[Any]) -> dict[str, Any]:
    """The trace-event object for node records and run records (see the module docs)."""
    everything = [*nodes, *runs]
    if not everything:
        return {"traceEvents": [], "displayTimeUnit": "ms"}
    t0 = min(r.start for r in everything)
    tracks = pack_lanes(nodes) | pack_lanes(runs, prefix="runs · ")
    tids: dict[tuple[int, str], int] = {}
    for record in sorted(everything, key=lambda r: r.start):
        tids.setdefault(tracks[id(record)], len(tids) + 1)
    events = _metadata(tids)
    for record in nodes:
        args = {
            "node_id": record.node_id,
            "operator": record.name,
            "attempt": record.attempt,
            "outcome": record.outcome,
        }
        if record.error:
            args["error"] = record.error
        events.append(_slice(record, record.node_id, "node", args, t0, tids[tracks[id(record)]]))
    for run in runs:
        name = f"run ({run.scheduler})" if run.scheduler else "run"
        args = {"scheduler": run.scheduler, "num_nodes": run.num_nodes, "failed": run.failed}
        events.append(_slice(run, name, "run", args, t0, tids[tracks[id(run)]]))
    return {"traceEvents": events, "displayTimeUnit": "ms"}


def _slice(
    record: Any, name: str, category: str, args: dict[str, Any], t0: float, tid: int
) -> dict[str, Any]:
    return {
        "name": name,
        "cat": category,
        "ph": "X",
        "ts": round((record.start - t0) * _US, 3),
        "dur": round(max(record.end - record.start, 0.0) * _US, 3),
        "pid": record.process,
        "tid": tid,
        "args": args,
    }


def _metadata(tids: dict[tuple[int, str], int]) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for process in sorted({process for process, _ in tids}):
        events.append(_label("process_name", process, 0, f"ember_xcs (pid {process})"))
    for (process, track), tid in tids.items():
        events.append(_label("thread_name", process, tid, track))
        # keep tracks in first-use order instead of Perfetto's alphabetical one
        events.append(_label("thread_sort_index", process, tid, tid, key="sort_index"))
    return events


def _label(kind: str, pid: int, tid: int, value: Any, key: str = "name") -> dict[str, Any]:
    return {"name": kind, "ph": "M", "pid": pid, "tid": tid, "args": {key: value}}


def write_json(trace: dict[str, Any], path: str | Path) -> None:
    """Write `trace` to `path` as strict JSON (no NaN), creating nothing else."""
    Path(path).write_text(json.dumps(trace, allow_nan=False), encoding="utf-8")
