"""`mesh_sharded` and `pmap` over a mesh that spans two processes of four CPU devices.

This is the multi-host path on one machine: each process is started the way a process
per host is started on a GPU cluster (`jax.distributed.initialize` with a coordinator
address, a process count and an id), here on 127.0.0.1 with a coordinator port the OS
picks, and each simulates 4 CPU devices. The worker (`multi_process_worker.py`) reports
what its process sees; the test checks the global results: replicated reductions agree in
both processes and equal the sum over all 32 rows, and the sharded outputs' rows, held half
by each process, together form the whole array.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).resolve().parent / "multi_process_worker.py"
ROOT = WORKER.parent.parent
PROCESSES = 2
TIMEOUT_SECONDS = 240


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def worker_env() -> dict[str, str]:
    env = dict(os.environ)
    # the suite's 8-device flag would give each process 8 devices; the worker asks for 4
    env["XLA_FLAGS"] = " ".join(
        flag
        for flag in env.get("XLA_FLAGS", "").split()
        if not flag.startswith("--xla_force_host_platform_device_count")
    )
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def run_processes() -> list[dict]:
    port = free_port()
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(i), str(PROCESSES), str(port)],
            env=worker_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT_SECONDS)
            assert proc.returncode == 0, f"worker exited {proc.returncode}:\n{err[-3000:]}"
            lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
            assert lines, f"worker printed no result:\n{out[-2000:]}\n{err[-2000:]}"
            results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    return results


@pytest.mark.slow  # two JAX processes start and compile: ~50 s on a busy 2-core machine
def test_mesh_sharded_and_pmap_span_two_processes_of_four_devices():
    results = run_processes()
    assert [r["process_index"] for r in results] == [0, 1]
    for r in results:
        assert (r["process_count"], r["device_count"], r["local_device_count"]) == (2, 8, 4)
        assert r["global_shape"] == [32, 1]  # 16 rows from each process
        assert r["sum_of_squares"] == float(sum(i * i for i in range(32)))
        assert r["psum"] == [float(sum(range(8)))]  # one item per device, reduced over all 8

    for key, factor in (("doubled", 2), ("tenfold", 10)):
        held = [{int(k): v for k, v in r[key].items()} for r in results]
        assert set(held[0]) == set(range(16)) and set(held[1]) == set(range(16, 32))
        merged = held[0] | held[1]
        assert merged == {i: [float(i * factor)] for i in range(32)}
