"""`Row`: one measured contender on one case, and the comparisons derived from rows.

Rows are grouped by `(section, scenario, latency)`. Within a group, "speedup vs plain
Python" divides the plain row's median by this row's, and "vs best baseline" divides this
row's median by the fastest baseline's (below 1.0 = faster than every baseline).
`ratio` is the row's headline number for the regression check: wall / critical path
where a critical path exists, else a per-node or vs-reference figure the section sets.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

__all__ = ["Row", "annotate"]


@dataclasses.dataclass
class Row:
    """One line of RESULTS.md and one record of results.json."""

    section: str
    scenario: str
    variant: str
    kind: str  # "plain" | "ember" | "baseline" | "reference"
    latency_ms: float | None = None
    median_s: float = math.nan
    min_s: float = math.nan
    max_s: float = math.nan
    runs: int = 0
    nodes: int = 0
    cp_s: float | None = None
    ok: bool = True
    note: str = ""
    ratio: float | None = None  # the headline ratio (set by the section)
    ratio_name: str = ""
    speedup: float | None = None
    vs_best_baseline: float | None = None
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def key(self) -> str:
        latency = "" if self.latency_ms is None else f"@{self.latency_ms:g}ms"
        return f"{self.section}/{self.scenario}{latency}/{self.variant}"

    @property
    def measured(self) -> bool:
        return self.runs > 0 and not math.isnan(self.median_s)

    @property
    def wall_over_cp(self) -> float | None:
        if not self.measured or not self.cp_s:
            return None
        return self.median_s / self.cp_s

    @property
    def us_per_node(self) -> float | None:
        if not self.measured or not self.nodes:
            return None
        return self.median_s / self.nodes * 1e6

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in data.items()}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for name in ("median_s", "min_s", "max_s"):
            if values.get(name) is None:
                values[name] = math.nan
        return cls(**values)


def annotate(rows: list[Row]) -> None:
    """Fill in speedup vs plain Python and ratio vs the best baseline, per group."""
    groups: dict[tuple[str, str, float | None], list[Row]] = {}
    for row in rows:
        groups.setdefault((row.section, row.scenario, row.latency_ms), []).append(row)
    for group in groups.values():
        plain = next((r for r in group if r.kind == "plain" and r.measured and r.ok), None)
        baselines = [r for r in group if r.kind == "baseline" and r.measured and r.ok]
        best = min((r.median_s for r in baselines), default=None)
        for row in group:
            if not row.measured:
                continue
            if plain is not None:
                row.speedup = plain.median_s / row.median_s
            if best is not None:
                row.vs_best_baseline = row.median_s / best
