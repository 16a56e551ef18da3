"""PNG plots of a run: speedup vs width, and per-node cost vs graph size.

Needs matplotlib (the `bench` extra); without it `write_plots` returns no files and the
report says why. The Agg backend is forced so plotting never needs a display.
"""

from __future__ import annotations

from pathlib import Path

from ._rows import Row

__all__ = ["write_plots"]

WIDTH_VARIANTS = (
    "graph: parallel",
    "jit: auto",
    "graph: dask",
    "threadpool",
    "asyncio",
    "dask.delayed",
    "langgraph",
)
SIZE_VARIANTS = (
    "plain python",
    "graph: sequential",
    "graph: parallel",
    "jit: auto, first call",
    "jit: trace, first call",
    "jit: auto, replay",
    "jit: dynamic",
)


def write_plots(out_dir: Path, rows: list[Row], notes: list[str]) -> list[str]:
    """Write the PNGs into `out_dir`; return their paths (none without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        notes.append("plots skipped: matplotlib is not installed (pip install 'ember_xcs[bench]')")
        return []
    written = []
    for name, draw in (("speedup_vs_width.png", _speedup), ("overhead_vs_size.png", _overhead)):
        fig = draw(plt, rows)
        if fig is None:
            continue
        path = out_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(str(path))
    return written


def _plain_ticks(ax, xticks: list[int]) -> None:  # noqa: ANN001
    """Write log-axis ticks as plain numbers (5, 10, 100) instead of 10^1 notation."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    ax.xaxis.set_major_locator(FixedLocator(xticks))
    ax.xaxis.set_minor_locator(NullLocator())
    for axis in (ax.xaxis, ax.yaxis):
        formatter = ScalarFormatter()
        formatter.set_scientific(False)
        axis.set_major_formatter(formatter)
    ax.yaxis.set_minor_formatter(NullFormatter())


def _fan_out_rows(rows: list[Row]) -> list[Row]:
    return [
        r
        for r in rows
        if r.section == "llm"
        and r.scenario.startswith("ensemble")
        and r.speedup is not None  # rows without a plain-Python run (async leaves) are left out
        and r.ok
    ]


def _speedup(plt, rows: list[Row]):  # noqa: ANN001, ANN202 - matplotlib objects
    fan = _fan_out_rows(rows)
    latencies = sorted({r.latency_ms for r in fan}, reverse=True)
    if not latencies:
        return None
    fig, axes = plt.subplots(1, len(latencies), figsize=(6 * len(latencies), 4.5), squeeze=False)
    for ax, latency in zip(axes[0], latencies, strict=True):
        at = [r for r in fan if r.latency_ms == latency]
        ideal = sorted({(r.extra["width"], r.extra["calls"] / r.extra["cp_calls"]) for r in at})
        ax.plot(*zip(*ideal, strict=True), "k--", label="ideal (calls / critical path)")
        for variant in WIDTH_VARIANTS:
            points = sorted((r.extra["width"], r.speedup) for r in at if r.variant == variant)
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", label=variant)
        ax.set(xscale="log", yscale="log", xlabel="calls that can run at once (width)")
        _plain_ticks(ax, sorted({r.extra["width"] for r in at}))
        ax.set(ylabel="speedup vs plain Python", title=f"ensembles + judge, L = {latency:g} ms")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    return fig


def _overhead(plt, rows: list[Row]):  # noqa: ANN001, ANN202
    scale = [r for r in rows if r.section == "scale" and r.measured and r.ok]
    if not scale:
        return None
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for variant in SIZE_VARIANTS:
        points = sorted((r.nodes, r.us_per_node) for r in scale if r.variant == variant)
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=variant)
    ax.axhline(15, color="grey", linestyle=":", label="goal: replay / parallel ≤ 15 µs")
    ax.axhline(5, color="grey", linestyle="-.", label="goal: sequential ≤ 5 µs")
    ax.set(xscale="log", yscale="log", xlabel="nodes in the graph", ylabel="µs per node")
    _plain_ticks(ax, sorted({r.nodes for r in scale}))
    ax.set(title="per-node cost vs graph size (no-op grids, 50 wide)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return fig
