"""One process of the two that `test_multi_process_mesh.py` starts (not a test module).

Run as `python multi_process_worker.py PROCESS_ID NUM_PROCESSES PORT`. Each process
simulates 4 CPU devices, joins the others through `jax.distributed.initialize` on
127.0.0.1:PORT, builds global arrays from its own rows, runs `mesh_sharded` and `pmap`
over the 8-device mesh that spans the processes, and prints one line `RESULT {json}`
with what it can see: the replicated reductions, and the rows of the sharded outputs
that live on its own devices.
"""

from __future__ import annotations

import json
import sys

import jax

LOCAL_DEVICES = 4
ROWS_PER_PROCESS = 16


def main(process_id: int, num_processes: int, port: int) -> None:
    jax.config.update("jax_num_cpu_devices", LOCAL_DEVICES)
    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{port}",
        num_processes=num_processes,
        process_id=process_id,
    )
    import numpy as np
    from jax.sharding import NamedSharding

    import ember_xcs as xcs

    P = xcs.PartitionSpec
    mesh = xcs.DeviceMesh((num_processes, LOCAL_DEVICES), ("hosts", "devices"))
    rows = P(("hosts", "devices"))
    first = process_id * ROWS_PER_PROCESS
    local = np.arange(first, first + ROWS_PER_PROCESS, dtype=np.float32).reshape(-1, 1)
    x = jax.make_array_from_process_local_data(NamedSharding(mesh, rows), local)

    total = xcs.mesh_sharded(
        lambda block: jax.lax.psum((block**2).sum(), ("hosts", "devices")),
        mesh,
        in_specs=rows,
        out_specs=P(),
    )(x)
    doubled = xcs.mesh_sharded(lambda block: block * 2, mesh, in_specs=rows, out_specs=rows)(x)

    line = xcs.DeviceMesh(num_processes * LOCAL_DEVICES, "pmap")
    y = jax.make_array_from_process_local_data(NamedSharding(line, P("pmap")), local)
    tenfold = xcs.pmap(lambda row: row * 10)(y)
    one_each = jax.make_array_from_process_local_data(
        NamedSharding(line, P("pmap")),
        np.arange(LOCAL_DEVICES, dtype=np.float32) + process_id * LOCAL_DEVICES,
    )
    summed = xcs.pmap(lambda v: jax.lax.psum(v, "i"), axis_name="i")(one_each)

    result = {
        "process_index": jax.process_index(),
        "process_count": jax.process_count(),
        "device_count": jax.device_count(),
        "local_device_count": jax.local_device_count(),
        "global_shape": list(x.shape),
        "sum_of_squares": float(total),
        "doubled": _local_rows(doubled),
        "tenfold": _local_rows(tenfold),
        "psum": sorted({float(s.data[0]) for s in summed.addressable_shards}),
    }
    print("RESULT " + json.dumps(result), flush=True)
    jax.distributed.shutdown()


def _local_rows(array) -> dict[int, list[float]]:
    """Global row index -> values, for the rows held by this process's devices."""
    out: dict[int, list[float]] = {}
    for shard in array.addressable_shards:
        start = shard.index[0].start or 0
        for offset, row in enumerate(shard.data.tolist()):
            out[start + offset] = row
    return out


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]))
