"""Run `mesh_sharded` and `pmap` over a device mesh that spans two processes.

Purpose: the multi-host path, on one machine. A GPU cluster runs one process per host,
each seeing its own GPUs; `jax.distributed.initialize` joins them, and then
`jax.devices()` lists every device of every process, so an `xcs.DeviceMesh` can span
them all. Here the hosts are two local processes of four simulated CPU devices each.

Features: `jax.distributed.initialize` on 127.0.0.1 with a port the OS picks; a 2x4
`DeviceMesh` ("hosts" x "devices") over all 8 devices; global arrays built from each
process's own rows with `jax.make_array_from_process_local_data`; `xcs.mesh_sharded`
with a `psum` across both processes; `xcs.pmap` with `axis_name` over the 8 devices.

How to run: `python examples/advanced/60_multi_process_mesh.py`. It starts itself twice
(process 0 and 1) and prints what each process computed. On real hosts, run the same
worker code on each host with the coordinator's address, `num_processes` and its own
`process_id` instead (see docs/multi-host.md).
"""

# expect: ^launching 2 processes of 4 CPU devices each, coordinator 127\.0\.0\.1:\d+$
# expect: ^process 0: 4 of 8 devices, rows 0-15 of 32$
# expect: ^process 1: 4 of 8 devices, rows 16-31 of 32$
# expect: ^process 0: sum of squares over all 32 rows = 10416\.0 \(mesh_sharded \+ psum\)$
# expect: ^process 1: pmap psum over 8 devices = 28\.0$
# expect: ^process 1: its rows of 2x: 32\.0 \.\. 62\.0$
# expect: ^both processes agree on the global results: True$

import json
import os
import socket
import subprocess
import sys

PROCESSES = 2
LOCAL_DEVICES = 4
ROWS = 16  # per process


def worker(process_id: int, port: int) -> None:
    """One process: join the others, build global arrays from local rows, compute."""
    import jax

    jax.config.update("jax_num_cpu_devices", LOCAL_DEVICES)  # before the first JAX operation
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}", num_processes=PROCESSES, process_id=process_id
    )
    import numpy as np
    from jax.sharding import NamedSharding

    import ember_xcs as xcs

    P = xcs.PartitionSpec
    mesh = xcs.DeviceMesh((PROCESSES, LOCAL_DEVICES), ("hosts", "devices"))
    rows = P(("hosts", "devices"))  # 32 rows over 8 devices: 4 per device
    first = process_id * ROWS
    local = np.arange(first, first + ROWS, dtype=np.float32).reshape(-1, 1)
    x = jax.make_array_from_process_local_data(NamedSharding(mesh, rows), local)
    print(
        f"process {process_id}: {jax.local_device_count()} of {jax.device_count()} devices, "
        f"rows {first}-{first + ROWS - 1} of {x.shape[0]}"
    )

    squares = xcs.mesh_sharded(
        lambda block: jax.lax.psum((block**2).sum(), ("hosts", "devices")),
        mesh,
        in_specs=rows,
        out_specs=P(),
    )
    total = float(squares(x))  # replicated: every process holds the whole (scalar) result
    print(
        f"process {process_id}: sum of squares over all {x.shape[0]} rows = {total} "
        "(mesh_sharded + psum)"
    )

    doubled = xcs.mesh_sharded(lambda block: block * 2, mesh, in_specs=rows, out_specs=rows)(x)
    mine = sorted(float(v) for s in doubled.addressable_shards for v in np.ravel(s.data))
    print(f"process {process_id}: its rows of 2x: {mine[0]} .. {mine[-1]}")

    line = xcs.DeviceMesh(PROCESSES * LOCAL_DEVICES, "i")
    one_each = np.arange(LOCAL_DEVICES, dtype=np.float32) + process_id * LOCAL_DEVICES
    items = jax.make_array_from_process_local_data(NamedSharding(line, P("i")), one_each)
    summed = xcs.pmap(lambda v: jax.lax.psum(v, "i"), axis_name="i")(items)
    psum = float(summed.addressable_shards[0].data[0])
    print(f"process {process_id}: pmap psum over {jax.device_count()} devices = {psum}")
    print("RESULT " + json.dumps({"total": total, "psum": psum}), flush=True)
    jax.distributed.shutdown()


def launch() -> None:
    """Start this file twice as processes 0 and 1, then show what each printed."""
    with socket.socket() as probe:  # a free port, chosen by the OS
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    print(
        f"launching {PROCESSES} processes of {LOCAL_DEVICES} CPU devices each, "
        f"coordinator 127.0.0.1:{port}"
    )
    env = dict(os.environ)
    # each process simulates its own 4 devices; drop a device count set for one process
    env["XLA_FLAGS"] = " ".join(
        f
        for f in env.get("XLA_FLAGS", "").split()
        if not f.startswith("--xla_force_host_platform_device_count")
    )
    env["JAX_PLATFORMS"] = "cpu"
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, str(i), str(port)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        if proc.returncode != 0:
            sys.exit(f"a process failed:\n{err[-2000:]}")
        lines = [line for line in out.splitlines() if line.startswith("process ")]
        print("\n".join(lines))
        result = [line for line in out.splitlines() if line.startswith("RESULT ")][-1]
        results.append(json.loads(result.removeprefix("RESULT ")))
    print(f"both processes agree on the global results: {results[0] == results[1]}")


if __name__ == "__main__":
    if len(sys.argv) == 3:
        worker(int(sys.argv[1]), int(sys.argv[2]))
    else:
        launch()
