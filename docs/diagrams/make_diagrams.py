"""Write the SVG diagrams of the documentation site (standard library only).

The SVGs are committed next to this script, so the site needs nothing at build or view
time (no CDN, no JavaScript, no graphviz). After changing a drawing, run

    python docs/diagrams/make_diagrams.py

and commit the script with the SVGs it wrote. Each diagram is a function returning the
SVG text; the helpers below draw boxes, arrows and text on a fixed grid.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

HERE = Path(__file__).resolve().parent
FONT = "DejaVu Sans, Helvetica, Arial, sans-serif"
INK = "#263238"
MUTED = "#607d8b"
COLORS = {
    "api": "#ffe0b2",
    "models": "#f8bbd0",
    "jit": "#c5cae9",
    "transforms": "#b2dfdb",
    "scheduling": "#bbdefb",
    "graph": "#dcedc8",
    "operators": "#fff9c4",
    "errors": "#eceff1",
    "stop": "#ffcdd2",
    "numeric": "#b2dfdb",
    "python": "#bbdefb",
    "judge": "#ffe0b2",
}


def svg(width: int, height: int, body: list[str], title: str) -> str:
    """A standalone SVG document that scales down to fit its container."""
    return "\n".join(
        [
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}"'
            f' width="{width}" height="{height}" role="img" aria-label="{escape(title)}"'
            f' font-family="{FONT}" font-size="13" fill="{INK}">',
            f"<title>{escape(title)}</title>",
            "<defs><marker id='arrow' viewBox='0 0 10 10' refX='9' refY='5' markerWidth='7'"
            f" markerHeight='7' orient='auto-start-reverse'><path d='M0,0 L10,5 L0,10 z'"
            f" fill='{INK}'/></marker></defs>",
            f'<rect width="{width}" height="{height}" fill="white"/>',
            *body,
            "</svg>",
        ]
    )


def text(
    x: float,
    y: float,
    label: str,
    *,
    size: int = 13,
    anchor: str = "middle",
    weight: str = "normal",
    color: str = INK,
) -> str:
    return (
        f'<text x="{x}" y="{y}" font-size="{size}" text-anchor="{anchor}"'
        f' font-weight="{weight}" fill="{color}">{escape(label)}</text>'
    )


def box(
    x: float,
    y: float,
    w: float,
    h: float,
    label: str,
    fill: str,
    *,
    sub: str = "",
    dashed: bool = False,
    size: int = 13,
) -> list[str]:
    """A rounded box with a centred label and an optional smaller second line."""
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    parts = [
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}"'
        f' stroke="{INK}" stroke-width="1.2"{dash}/>'
    ]
    if sub:
        parts.append(text(x + w / 2, y + h / 2 - 3, label, size=size, weight="bold"))
        parts.append(text(x + w / 2, y + h / 2 + 13, sub, size=11, color=MUTED))
    else:
        parts.append(text(x + w / 2, y + h / 2 + 4, label, size=size, weight="bold"))
    return parts


def arrow(
    x1: float,
    y1: float,
    x2: float,
    y2: float,
    label: str = "",
    *,
    dashed: bool = False,
    label_dx: float = 6,
    label_dy: float = -4,
) -> list[str]:
    dash = ' stroke-dasharray="5,4"' if dashed else ""
    parts = [
        f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="{INK}" stroke-width="1.3"'
        f' marker-end="url(#arrow)"{dash}/>'
    ]
    if label:
        mx, my = (x1 + x2) / 2 + label_dx, (y1 + y2) / 2 + label_dy
        parts.append(text(mx, my, label, size=11, anchor="start", color=MUTED))
    return parts


def layers() -> str:
    """The layers, top (public API) to bottom, with the libraries each leans on."""
    body = [
        text(
            380,
            28,
            "Layers: imports point down only (tests/test_layering.py)",
            size=15,
            weight="bold",
        )
    ]
    rows = [
        (
            "ember_xcs/__init__.py, cli.py",
            "the public API: explicit re-exports; ember-xcs command",
            "api",
        ),
        ("models/", "Model protocol, simulated and HTTP models, LLMOperator, ensembles", "models"),
        (None, None, None),
        (
            "scheduling/",
            "plans, one engine loop, executors, schedulers, hooks, Timeline",
            "scheduling",
        ),
        ("graph/", "Graph: nodes, edges, waves, critical path, rendering", "graph"),
        ("operators/", "Operator (a JAX pytree), op, the call-interception seam", "operators"),
        (
            "_errors, _options",
            "one exception hierarchy; ExecutionOptions in a ContextVar",
            "errors",
        ),
    ]
    y = 48
    for name, sub, color in rows:
        if name is None:
            body += box(
                40, y, 290, 52, "_jit/", COLORS["jit"], sub="tracing, plans, strategies, cache"
            )
            body += box(
                350,
                y,
                290,
                52,
                "transforms/",
                COLORS["transforms"],
                sub="vmap, pmap, mesh_sharded, meshes",
            )
        else:
            body += box(40, y, 600, 52, name, COLORS[color], sub=sub)
        if y > 48:
            body += arrow(340, y - 14, 340, y - 2)
        y += 66
    side = [
        (48 + 66 * 2 + 26, "JAX / XLA", "jax.jit, shard_map, sharding"),
        (48 + 66 * 3 + 26, "Dask", "distributed executor"),
        (48 + 66 * 4 + 26, "networkx", "graph algorithms"),
    ]
    for cy, name, sub in side:
        body += box(670, cy - 24, 190, 48, name, "#f5f5f5", sub=sub, dashed=True, size=12)
        body += arrow(668, cy, 642, cy)
    return svg(880, y + 10, body, "The layers of ember_xcs")


def jit_flow() -> str:
    """A jitted call: signature -> cache -> trace -> plan -> replay, and the fallbacks."""
    body = [text(440, 28, "What happens on a jitted call", size=15, weight="bold")]
    body += box(30, 50, 160, 46, "call fn(*args)", COLORS["api"])
    body += box(240, 50, 180, 46, "signature", COLORS["jit"], sub="pytree structure, shapes")
    body += box(470, 50, 160, 46, "plan cache", COLORS["jit"], sub="LRU, per function")
    body += box(
        690, 50, 170, 46, "replay the plan", COLORS["scheduling"], sub="scheduler, new inputs"
    )
    body += arrow(190, 73, 238, 73)
    body += arrow(420, 73, 468, 73)
    body += arrow(630, 73, 688, 73, "hit", label_dx=-14, label_dy=-8)
    body += box(470, 150, 160, 46, "symbolic trace", COLORS["jit"], sub="placeholders in")
    body += arrow(550, 96, 550, 148, "miss")
    body += box(690, 150, 185, 46, "plan", COLORS["graph"], sub="leaf calls, numeric segments")
    body += arrow(630, 173, 688, 173, "ok", label_dx=-14, label_dy=-8)
    body += arrow(775, 150, 775, 98, "cache it, then run", label_dx=8)
    body += box(30, 150, 160, 46, "run inline", COLORS["errors"], sub="inside an outer trace")
    body += arrow(110, 96, 110, 148, "nested jit", label_dx=6)
    body.append(
        text(
            550,
            240,
            "Python needed a value (if, f-string, len, float ...): the trace stops",
            size=12,
            color=MUTED,
        )
    )
    body += arrow(550, 196, 550, 252, dashed=True)
    fallbacks = [
        (30, "auto: stopped composite", "one opaque node, dynamic"),
        (245, "auto / trace: stop in fn", "whole call dynamic"),
        (460, "structural", "run as written, one node"),
        (675, "strict=True", "TraceError with the reason"),
    ]
    for x, label, sub in fallbacks:
        body += box(x, 258, 195, 50, label, COLORS["stop"], sub=sub, size=12)
    body += box(
        245,
        350,
        410,
        50,
        "dynamic dispatch",
        COLORS["scheduling"],
        sub="body runs every call; leaf calls overlap; values resolved where used",
    )
    body += arrow(342, 308, 400, 348)
    body += arrow(128, 308, 300, 348)
    return svg(890, 420, body, "jit: signature, cache, trace, plan, replay, and the fallbacks")


def dataflow_waves() -> str:
    """Two ensembles + judges and a final judge, run by waves and by dataflow."""
    body = [
        text(
            450,
            26,
            "Ensemble + judge: waves vs dataflow (bars in time units)",
            size=15,
            weight="bold",
        )
    ]
    nodes = {  # name: (x, y, color)
        "a1": (40, 60),
        "a2": (40, 100),
        "a3": (40, 140),
        "b1": (40, 200),
        "b2": (40, 240),
        "b3": (40, 280),
        "judge A": (170, 100),
        "judge B": (170, 240),
        "final": (290, 170),
    }
    for name, (x, y) in nodes.items():
        kind = "judge" if "judge" in name or name == "final" else "python"
        body += box(x, y, 80, 30, name, COLORS[kind], size=12)
    for unit in ("a1", "a2", "a3"):
        x, y = nodes[unit]
        body += arrow(x + 80, y + 15, 168, 115)
    for unit in ("b1", "b2", "b3"):
        x, y = nodes[unit]
        body += arrow(x + 80, y + 15, 168, 255)
    body += arrow(250, 115, 288, 180)
    body += arrow(250, 255, 288, 192)
    body.append(text(60, 335, "wave 0", size=11, color=MUTED))
    body.append(text(210, 335, "wave 1", size=11, color=MUTED))
    body.append(text(330, 335, "wave 2", size=11, color=MUTED))
    body.append(
        text(
            40,
            360,
            "units a: 1 unit of time, judge A: 3; units b: 3, judge B: 1; final: 1",
            size=11,
            anchor="start",
            color=MUTED,
        )
    )
    schedules = {
        "wave scheduler: each wave waits for the slowest node of the last": {
            "a1-a3": (0, 1),
            "b1-b3": (0, 3),
            "judge A": (3, 6),
            "judge B": (3, 4),
            "final": (6, 7),
        },
        "dataflow (parallel): a node starts when its own inputs are ready": {
            "a1-a3": (0, 1),
            "b1-b3": (0, 3),
            "judge A": (1, 4),
            "judge B": (3, 4),
            "final": (4, 5),
        },
    }
    unit, left, top = 40, 520, 60
    for title, rows in schedules.items():
        body.append(text(left - 110, top, title, size=12, anchor="start", weight="bold"))
        for i, (name, (start, end)) in enumerate(rows.items()):
            y = top + 14 + i * 24
            body.append(text(left - 8, y + 14, name, size=11, anchor="end"))
            color = COLORS["judge"] if "judge" in name or name == "final" else COLORS["python"]
            body.append(
                f'<rect x="{left + start * unit}" y="{y}" width="{(end - start) * unit}"'
                f' height="18" fill="{color}" stroke="{INK}"/>'
            )
        end = max(e for _, e in rows.values())
        y = top + 14 + len(rows) * 24
        body.append(
            f'<line x1="{left}" y1="{y + 2}" x2="{left + 7 * unit}" y2="{y + 2}" stroke="{MUTED}"/>'
        )
        body.append(text(left + end * unit, y + 16, f"done at {end}", size=11, color=MUTED))
        top += 170
    body.append(
        text(
            left - 110,
            400,
            "critical path: 5 (b + judge B + final, or a + judge A + final) = dataflow",
            size=11,
            anchor="start",
            color=MUTED,
        )
    )
    return svg(900, 420, body, "Dataflow scheduling of an ensemble and judge against waves")


def data_movement() -> str:
    """Where the blocks of a batch go under vmap, pmap and mesh_sharded."""
    body = [text(450, 26, "Where the data goes", size=15, weight="bold")]
    # vmap: one device, the whole batch vectorised
    body.append(text(120, 56, "vmap: one device", size=13, weight="bold"))
    for i in range(8):
        body.append(
            f'<rect x="60" y="{70 + i * 16}" width="120" height="14"'
            f' fill="{COLORS["numeric"]}" stroke="{INK}"/>'
        )
    body.append(text(120, 220, "batch of 8 rows -> jax.vmap", size=11, color=MUTED))
    body.append(text(120, 236, "compiled once per shape", size=11, color=MUTED))
    body += box(60, 250, 120, 34, "device 0", "#f5f5f5", size=12)
    # pmap: contiguous blocks over a 1-D mesh
    body.append(text(430, 56, "pmap: 16 rows over 8 devices", size=13, weight="bold"))
    for d in range(8):
        x = 250 + d * 46
        for r in range(2):
            body.append(
                f'<rect x="{x}" y="{70 + r * 16}" width="40" height="14"'
                f' fill="{COLORS["numeric"]}" stroke="{INK}"/>'
            )
        body.append(text(x + 20, 122, f"{2 * d}-{2 * d + 1}", size=10, color=MUTED))
        body += arrow(x + 20, 128, x + 20, 160)
        body += box(x, 162, 40, 30, f"d{d}", "#f5f5f5", size=11)
    body.append(
        text(430, 220, "rows 2d, 2d+1 go to device d; out: P('pmap')", size=11, color=MUTED)
    )
    body.append(
        text(
            430,
            236,
            "Python operators: chunks on the scheduler, num_workers at once",
            size=11,
            color=MUTED,
        )
    )
    # mesh_sharded: 2x4 grid
    top = 300
    body.append(text(450, top, "mesh_sharded on a 2x4 mesh: y = x @ w", size=13, weight="bold"))
    body.append(text(130, top + 26, "x: P('data', None)", size=12))
    for r in range(2):
        body.append(
            f'<rect x="70" y="{top + 40 + r * 50}" width="120" height="46"'
            f' fill="{["#b3e5fc", "#ffccbc"][r]}" stroke="{INK}"/>'
        )
        body.append(text(130, top + 68 + r * 50, f"rows block {r}", size=11))
    body.append(text(310, top + 26, "w: P(None, 'model')", size=12))
    for c in range(4):
        body.append(
            f'<rect x="{240 + c * 36}" y="{top + 40}" width="32" height="96"'
            f' fill="{["#c8e6c9", "#fff59d", "#d1c4e9", "#f8bbd0"][c]}" stroke="{INK}"/>'
        )
        body.append(text(256 + c * 36, top + 150, f"c{c}", size=11))
    body.append(
        text(640, top + 26, "device (i, j) holds x block i, w block j -> y block (i, j)", size=12)
    )
    for r in range(2):
        for c in range(4):
            x, y = 470 + c * 88, top + 40 + r * 56
            body.append(
                f'<rect x="{x}" y="{y}" width="82" height="50" rx="5"'
                f' fill="{["#b3e5fc", "#ffccbc"][r]}" stroke="{INK}"/>'
            )
            body.append(
                f'<rect x="{x + 56}" y="{y + 6}" width="18" height="38"'
                f' fill="{["#c8e6c9", "#fff59d", "#d1c4e9", "#f8bbd0"][c]}" stroke="{INK}"/>'
            )
            body.append(text(x + 28, y + 30, f"d{r * 4 + c}", size=12, weight="bold"))
    body += arrow(192, top + 90, 236, top + 90)
    body += arrow(386, top + 90, 466, top + 90, "placed by in_specs", label_dx=-40, label_dy=-14)
    body.append(
        text(
            450,
            top + 180,
            "no communication for x @ w; split the contraction over "
            "'model' instead and psum adds the 4 partial sums of each mesh row",
            size=11,
            color=MUTED,
        )
    )
    return svg(900, top + 196, body, "Data movement under vmap, pmap and mesh_sharded")


DIAGRAMS = {
    "layers.svg": layers,
    "jit_flow.svg": jit_flow,
    "dataflow_waves.svg": dataflow_waves,
    "data_movement.svg": data_movement,
}


def main() -> None:
    for name, draw in DIAGRAMS.items():
        (HERE / name).write_text(draw() + "\n")
        print(f"wrote docs/diagrams/{name}")


if __name__ == "__main__":
    main()
