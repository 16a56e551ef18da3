"""Numeric rows: ember_xcs transforms against the raw JAX code they stand for.

Runs in a subprocess (`python -m ember_xcs_bench._numeric`) with
`XLA_FLAGS=--xla_force_host_platform_device_count=8` set before JAX starts: the parent
process has usually initialised JAX already (the mixed scenario), and the device count
cannot change after that.

| scenario | ember_xcs | reference |
|---|---|---|
| `vmap-small` (batch 8 x 16, dispatch-bound) | `xcs.vmap(f)`, `jax.jit(xcs.vmap(f))` | `jax.jit(jax.vmap(f))` |
| `vmap-large` (batch 1,024 x 512, compute-bound) | same | same |
| `mesh-small` (64 x 16) / `mesh-large` (2,048 x 512), 8 devices | `xcs.mesh_sharded(f, mesh, ...)` | `jax.jit` with `NamedSharding` in/out |
| `matmul-Nd` (2,048 x 512, N = 1, 2, 4, 8 devices) | `xcs.mesh_sharded` | `jax.jit` + `NamedSharding` (report) |

Timing: each sample is the mean of `k` blocking calls (`k` sized so a sample takes about
20 ms), ember and reference samples interleaved so drift hits both alike; the row keeps
the per-call median of the samples, and its ratio is the median of the paired
per-sample ratios (ember sample / the reference sample taken just before it). Outputs are compared with `numpy.allclose`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

from ._rows import Row

__all__ = ["NOTES", "numeric_section"]

NOTES: list[str] = []
DEVICES = 8
_TIMEOUT_SECONDS = 900


def numeric_section(settings: Any, log: Callable[[str], None]) -> list[Row]:
    """Run the numeric benchmarks in a child process with 8 simulated devices."""
    log(f"[numeric] subprocess with {DEVICES} simulated CPU devices")
    env = dict(os.environ)
    env["XLA_FLAGS"] = (
        f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={DEVICES}".strip()
    )
    env.setdefault("JAX_PLATFORMS", "cpu")
    argv = [sys.executable, "-m", "ember_xcs_bench._numeric", "--samples", str(_samples(settings))]
    argv += ["--quick"] if settings.quick else []
    try:
        proc = subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired:
        return [_failed_row(f"numeric subprocess exceeded {_TIMEOUT_SECONDS} s")]
    if proc.returncode != 0:
        return [_failed_row(f"numeric subprocess failed: {proc.stderr.strip().splitlines()[-1:]}")]
    rows = [
        Row.from_json({"section": "numeric", **d}) for d in json.loads(proc.stdout.splitlines()[-1])
    ]
    for row in rows:
        shown = f"{row.median_s * 1e6:10.1f} us" if row.measured else "   skipped"
        log(f"  {row.scenario:<18} {row.variant:<34} {shown}  {row.note}")
    return rows


def _samples(settings: Any) -> int:
    return 2 if settings.quick else max(15, 3 * settings.repeats)


def _failed_row(reason: str) -> Row:
    return Row(
        section="numeric", scenario="numeric", variant="all", kind="ember", ok=False, note=reason
    )


# --- the child process ------------------------------------------------------------------------


def _child(quick: bool, samples: int) -> list[dict[str, Any]]:
    import jax

    if jax.device_count() < DEVICES:
        raise SystemExit(f"need {DEVICES} devices, JAX sees {jax.device_count()}")
    rows: list[dict[str, Any]] = []
    small, large = (8, 16), ((256, 128) if quick else (1024, 512))
    rows += _vmap_rows("vmap-small", small, "small", samples)
    rows += _vmap_rows("vmap-large", large, "large", samples)
    rows += _mesh_rows("mesh-small", (64, 16), "small", DEVICES, samples)
    rows += _mesh_rows(
        "mesh-large", (512, 256) if quick else (8192, 1024), "large", DEVICES, samples
    )
    for n in (1, 2, 4, 8):
        rows += _mesh_rows(
            f"matmul-{n}d", (512, 256) if quick else (8192, 1024), "scaling", n, samples
        )
    return rows


def _vmap_rows(scenario: str, shape: tuple[int, int], size: str, samples: int) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np

    batch, dim = shape
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.standard_normal((dim, dim)).astype(np.float32) / dim**0.5)
    x = jnp.asarray(rng.standard_normal((batch, dim)).astype(np.float32))

    def f(v: Any) -> Any:
        h = jnp.tanh(v @ w)
        return h @ w.T + jnp.sum(h * h)

    reference = jax.jit(jax.vmap(f))
    from ember_xcs.transforms import vmap

    contenders = {"xcs.vmap(f)": vmap(f), "jax.jit(xcs.vmap(f))": jax.jit(vmap(f))}
    return _compare(scenario, size, "jax.jit(jax.vmap(f))", reference, contenders, (x,), samples)


def _mesh_rows(
    scenario: str, shape: tuple[int, int], size: str, devices: int, samples: int
) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.sharding import AxisType, NamedSharding, PartitionSpec

    rows_n, dim = shape
    mesh = jax.make_mesh(
        (devices,), ("data",), axis_types=(AxisType.Auto,), devices=jax.devices()[:devices]
    )
    data, replicated = (
        NamedSharding(mesh, PartitionSpec("data")),
        NamedSharding(mesh, PartitionSpec()),
    )
    rng = np.random.default_rng(1)
    x = jax.device_put(rng.standard_normal((rows_n, dim)).astype(np.float32), data)
    w = jax.device_put(rng.standard_normal((dim, dim)).astype(np.float32) / dim**0.5, replicated)

    def f(a: Any, b: Any) -> Any:
        return jnp.tanh(a @ b) @ b

    reference = jax.jit(f, in_shardings=(data, replicated), out_shardings=data)
    label = f"jax.jit + NamedSharding ({devices} dev)"
    from ember_xcs.transforms import mesh_sharded

    specs = {
        "in_specs": (PartitionSpec("data"), PartitionSpec()),
        "out_specs": PartitionSpec("data"),
    }
    ember = {f"xcs.mesh_sharded ({devices} dev)": mesh_sharded(f, mesh, **specs)}
    return _compare(scenario, size, label, reference, ember, (x, w), samples)


def _compare(scenario, size, ref_name, reference, contenders, args, samples):  # noqa: ANN001
    import numpy as np

    want = np.asarray(_block(reference(*args)))
    calls = _calls_per_sample(reference, args)
    checked: dict[str, tuple[Callable, bool, str]] = {}
    for name, fn in contenders.items():
        try:
            ok = bool(np.allclose(np.asarray(_block(fn(*args))), want, rtol=1e-4, atol=1e-5))
            checked[name] = (fn, ok, "" if ok else "outputs differ from the reference")
        except Exception as exc:  # noqa: BLE001 - a failing transform is a reported row
            checked[name] = (None, False, f"{type(exc).__name__}: {str(exc)[:160]}")
    times: dict[str, list[float]] = {ref_name: [], **{n: [] for n, c in checked.items() if c[0]}}
    runners = {ref_name: reference, **{n: c[0] for n, c in checked.items() if c[0]}}
    for _ in range(samples):
        for name, fn in runners.items():
            times[name].append(_sample(fn, args, calls))
    extra = {"size": size, "report_only": size == "scaling", "calls_per_sample": calls}
    rows = [_row(scenario, ref_name, "reference", times[ref_name], True, "", extra)]
    for name, (_fn, ok, note) in checked.items():
        row = _row(scenario, name, "ember", times.get(name, []), ok, note, extra)
        if row["median_s"] is not None:
            row["ratio"] = _paired_ratio(times[name], times[ref_name])
        rows.append(row)
    return rows


def _paired_ratio(ember: list[float], reference: list[float]) -> float:
    """Median of per-sample ratios; each ember sample is paired with the reference sample
    taken just before it, so load from other processes cancels instead of adding noise."""
    return statistics.median(e / r for e, r in zip(ember, reference, strict=True))


def _row(scenario, variant, kind, times, ok, note, extra) -> dict[str, Any]:  # noqa: ANN001
    median = statistics.median(times) if times else None
    return {
        "scenario": scenario,
        "variant": variant,
        "kind": kind,
        "median_s": median,
        "min_s": min(times) if times else None,
        "max_s": max(times) if times else None,
        "runs": len(times),
        "ok": ok,
        "note": note,
        "ratio": 1.0 if kind == "reference" and median else None,
        "ratio_name": "vs raw JAX",
        "extra": dict(extra),
    }


def _block(value: Any) -> Any:
    import jax

    return jax.block_until_ready(value)


def _calls_per_sample(fn: Callable, args: tuple, target: float = 0.02) -> int:
    for _ in range(3):  # compile and settle
        _block(fn(*args))
    start = time.perf_counter()
    _block(fn(*args))
    once = max(time.perf_counter() - start, 1e-6)
    return max(1, min(2000, int(target / once)))


def _sample(fn: Callable, args: tuple, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        _block(fn(*args))
    return (time.perf_counter() - start) / calls


def _main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m ember_xcs_bench._numeric")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--samples", type=int, default=15)
    args = parser.parse_args(argv)
    rows = _child(args.quick, args.samples)
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
