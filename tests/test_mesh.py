"""`DeviceMesh` and `mesh_sharded`: same answers as unsharded code, outputs carrying the
requested `NamedSharding` on 2x4 and 8x1 meshes, Python operators chunked over the mesh's
devices, and errors in the user's names. Other device counts run in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import AxisType, Mesh, NamedSharding
from weighted_ops import counting_scale

import ember_xcs as xcs
from ember_xcs import TransformError

P = xcs.PartitionSpec
MESH_2X4 = xcs.DeviceMesh((2, 4), ("data", "model"))
MESH_8X1 = xcs.DeviceMesh((8, 1), ("data", "model"))
X = jnp.arange(8 * 16.0).reshape(8, 16) / 100
W = jnp.linspace(-1, 1, 16 * 8).reshape(16, 8)


def project(x, w):
    return jnp.tanh(x @ w)


# --- DeviceMesh ----------------------------------------------------------------------------


def test_device_mesh_is_a_jax_mesh_with_auto_axes_by_default():
    assert isinstance(MESH_2X4, Mesh) and isinstance(MESH_2X4, xcs.DeviceMesh)
    assert dict(MESH_2X4.shape) == {"data": 2, "model": 4}
    assert MESH_2X4.axis_types == (AxisType.Auto, AxisType.Auto)


def test_any_jax_mesh_counts_as_a_device_mesh():
    assert isinstance(jax.make_mesh((8,), ("x",)), xcs.DeviceMesh)
    assert not isinstance("mesh", xcs.DeviceMesh)


def test_device_mesh_from_devices_defaults_to_one_axis_over_them():
    mesh = xcs.DeviceMesh(devices=jax.devices()[2:6], axis_names="workers")
    assert dict(mesh.shape) == {"workers": 4}
    assert list(mesh.devices.flat) == jax.devices()[2:6]


def test_device_mesh_can_opt_into_explicit_axes():
    mesh = xcs.DeviceMesh((4, 2), ("a", "b"), axis_types="explicit")
    assert mesh.axis_types == (AxisType.Explicit, AxisType.Explicit)


def test_device_mesh_needing_more_devices_says_how_to_simulate_them():
    with pytest.raises(
        TransformError,
        match=r"DeviceMesh\(shape=\(4, 4\), axis_names=\('data', 'model'\)\) needs 16 devices "
        r"but JAX sees 8 \(cpu\); to simulate 16 CPU devices set "
        r"XLA_FLAGS=--xla_force_host_platform_device_count=16 before JAX starts, or call "
        r"jax.config.update\('jax_num_cpu_devices', 16\)",
    ):
        xcs.DeviceMesh((4, 4), ("data", "model"))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"shape": (2, 4), "axis_names": ("data",)},
            r"shape \(2, 4\) has 2 axes but axis_names \('data',\) has 1",
        ),
        ({"shape": (2, 2), "axis_names": ("a", "a")}, r"axis names must differ"),
        ({"shape": (0,), "axis_names": ("a",)}, r"shape must be positive ints"),
        (
            {"shape": (3,), "axis_names": ("a",), "devices": jax.devices()[:2]},
            r"needs 3 devices but 2 were given",
        ),
        (
            {"shape": (2,), "axis_names": ("a",), "axis_types": "manual"},
            r"axis_types='manual'; use 'auto', 'explicit'",
        ),
        ({"axis_names": ("a", "b")}, r"2 axis names \('a', 'b'\) need a shape"),
    ],
    ids=[
        "names-vs-shape",
        "repeated-names",
        "bad-shape",
        "too-few-devices",
        "bad-axis-types",
        "no-shape",
    ],
)
def test_device_mesh_rejects_inconsistent_arguments(kwargs, message):
    with pytest.raises(TransformError, match=message):
        xcs.DeviceMesh(**kwargs)


# --- mesh_sharded: numeric -----------------------------------------------------------------


@pytest.mark.parametrize("mesh", [MESH_2X4, MESH_8X1], ids=["2x4", "8x1"])
def test_data_and_model_sharded_projection_equals_unsharded_and_carries_the_spec(mesh):
    sharded = xcs.mesh_sharded(
        project, mesh, in_specs=(P("data", None), P(None, "model")), out_specs=P("data", "model")
    )
    out = sharded(X, W)
    chex.assert_trees_all_close(out, project(X, W), rtol=1e-5, atol=1e-6)
    assert out.sharding == NamedSharding(mesh, P("data", "model"))
    assert out.sharding.device_set == set(jax.devices())
    rows, cols = 8 // mesh.shape["data"], 8 // mesh.shape["model"]
    assert {s.data.shape for s in out.addressable_shards} == {(rows, cols)}


def test_data_parallel_rows_are_split_and_model_axis_replicated():
    sharded = xcs.mesh_sharded(jnp.sin, MESH_2X4, in_specs=P("data"), out_specs=P("data"))
    out = sharded(X)
    chex.assert_trees_all_close(out, jnp.sin(X))
    assert out.sharding.spec == P("data")
    assert {s.data.shape for s in out.addressable_shards} == {(4, 16)}


def test_collectives_over_the_model_axis_reduce_across_blocks():
    def row_dot(x, w):  # contraction dimension split over "model": partial sums + psum
        return jax.lax.psum(x @ w, "model")

    sharded = xcs.mesh_sharded(
        row_dot, MESH_2X4, in_specs=(P("data", "model"), P("model", None)), out_specs=P("data")
    )
    chex.assert_trees_all_close(sharded(X, W), X @ W, rtol=1e-5, atol=1e-6)


def test_in_specs_may_be_a_pytree_prefix_of_an_argument():
    def combine(params, x):
        return x @ params["w"] + params["b"]

    params = {"w": W, "b": jnp.ones(8)}
    sharded = xcs.mesh_sharded(
        combine,
        MESH_2X4,
        in_specs=({"w": P(None, "model"), "b": P("model")}, P("data")),
        out_specs=P("data", "model"),
    )
    chex.assert_trees_all_close(sharded(params, X), X @ W + 1, rtol=1e-5, atol=1e-6)


def test_in_specs_may_name_parameters_and_leave_the_rest_replicated():
    sharded = xcs.mesh_sharded(project, MESH_2X4, in_specs={"x": P("data")}, out_specs=P("data"))
    out = sharded(X, w=W)
    chex.assert_trees_all_close(out, project(X, W), rtol=1e-5, atol=1e-6)


def test_inputs_committed_elsewhere_or_given_as_numpy_are_placed_first():
    sharded = xcs.mesh_sharded(project, MESH_2X4, in_specs=(P("data"), P()), out_specs=P("data"))
    on_one_device = jax.device_put(X, jax.devices()[5])
    other_layout = jax.device_put(X, NamedSharding(MESH_2X4, P(None, "model")))
    for x in (on_one_device, other_layout, np.asarray(X)):
        out = sharded(x, W)
        chex.assert_trees_all_close(out, project(X, W), rtol=1e-5, atol=1e-6)
        assert out.sharding.spec == P("data")


def test_explicit_axis_meshes_work_with_unsharded_inputs():
    mesh = jax.make_mesh((2, 4), ("data", "model"))  # Explicit axes: JAX's default
    sharded = xcs.mesh_sharded(
        project, mesh, in_specs=(P("data", None), P(None, "model")), out_specs=P("data", "model")
    )
    out = sharded(np.asarray(X), W)
    chex.assert_trees_all_close(out, project(X, W), rtol=1e-5, atol=1e-6)
    assert out.sharding.spec == P("data", "model")


def test_mesh_sharded_traces_once_per_new_shape_not_per_call():
    traces = []

    def f(x):
        traces.append(x.shape)
        return x * 2

    sharded = xcs.mesh_sharded(f, MESH_2X4, in_specs=P("data"), out_specs=P("data"))
    for _ in range(4):
        sharded(X)
    assert len(traces) == 1
    sharded(jnp.ones((4, 16)))
    assert len(traces) == 2


def test_jax_jit_of_mesh_sharded_keeps_the_requested_sharding():
    sharded = xcs.mesh_sharded(
        project,
        MESH_2X4,
        in_specs=(P("data", None), P(None, "model")),
        out_specs=P("data", "model"),
    )
    assert sharded.numeric
    out = jax.jit(sharded)(X, W)
    chex.assert_trees_all_close(out, project(X, W), rtol=1e-5, atol=1e-6)
    assert out.sharding.spec == P("data", "model")


# --- mesh_sharded: errors -----------------------------------------------------------------


def test_spec_naming_an_axis_the_mesh_lacks_suggests_the_closest():
    with pytest.raises(
        TransformError,
        match=r"mesh_sharded\(project\): in_specs for w is P\(None, 'modle'\) and names mesh axis "
        r"'modle' \(did you mean 'model'\?\), but the mesh has axes 'data' \(size 2\), 'model' \(size 4\)",
    ):
        xcs.mesh_sharded(project, MESH_2X4, in_specs=(P("data"), P(None, "modle")), out_specs=P())


def test_out_spec_naming_an_unknown_axis_is_an_error():
    with pytest.raises(
        TransformError, match=r"out_specs is P\('batch',\) and names mesh axis 'batch'"
    ):
        xcs.mesh_sharded(project, MESH_2X4, in_specs=P(), out_specs=P("batch"))


def test_spec_using_an_axis_twice_is_an_error():
    with pytest.raises(TransformError, match=r"uses mesh axis 'data' twice"):
        xcs.mesh_sharded(project, MESH_2X4, in_specs=P("data", "data"), out_specs=P())


def test_spec_longer_than_the_arguments_rank_names_argument_and_rank():
    sharded = xcs.mesh_sharded(
        project, MESH_2X4, in_specs=(P("data", None, None), P()), out_specs=P()
    )
    with pytest.raises(
        TransformError,
        match=r"in_specs for x is P\('data', None, None\) \(3 entries\) but x is float32\[8,16\] \(rank 2\)",
    ):
        sharded(X, W)


def test_out_spec_longer_than_the_output_rank_is_an_error():
    sharded = xcs.mesh_sharded(lambda x: x.sum(), MESH_2X4, in_specs=P(), out_specs=P("data"))
    with pytest.raises(
        TransformError,
        match=r"out_specs for output is P\('data',\) \(1 entries\) but output is float32\[\]",
    ):
        sharded(X)


def test_dimension_not_divisible_by_its_mesh_axes_names_size_and_devices():
    sharded = xcs.mesh_sharded(project, MESH_2X4, in_specs=(P(None, "model"), P()), out_specs=P())
    with pytest.raises(
        TransformError,
        match=r"x has size 6 in dimension 1, which in_specs P\(None, 'model'\) splits over mesh "
        r"axis 'model' \(4\) = 4 devices; 6 is not divisible by 4",
    ):
        sharded(jnp.ones((8, 6)), jnp.ones((6, 8)))


def test_in_specs_with_wrong_number_of_entries_names_the_arguments():
    sharded = xcs.mesh_sharded(project, MESH_2X4, in_specs=(P("data"),), out_specs=P())
    with pytest.raises(
        TransformError,
        match=r"in_specs has 1 entries but the call passed 2 positional argument\(s\) \(x, w\)",
    ):
        sharded(X, W)


def test_in_specs_naming_an_unknown_parameter_is_an_error():
    with pytest.raises(
        TransformError, match=r"in_specs names 'z', which is not a parameter of project \(x, w\)"
    ):
        xcs.mesh_sharded(project, MESH_2X4, in_specs={"z": P("data")}, out_specs=P())


def test_mesh_must_be_a_mesh():
    with pytest.raises(
        TransformError, match=r"mesh must be a DeviceMesh / jax.sharding.Mesh, got tuple"
    ):
        xcs.mesh_sharded(project, (2, 4), in_specs=P(), out_specs=P())


def test_spec_of_the_wrong_type_is_an_error():
    with pytest.raises(
        TransformError, match=r"in_specs for x is 'data' \(str\); specs must be PartitionSpec"
    ):
        xcs.mesh_sharded(project, MESH_2X4, in_specs=("data", None), out_specs=P())


# --- mesh_sharded: Python operators -------------------------------------------------------


def test_python_operator_chunks_leading_axis_over_every_device_and_joins_in_order():
    chunks = []

    @xcs.op
    def answer_all(prompts: list, prefix: str) -> list:
        chunks.append(list(prompts))
        return [f"{prefix}{p}" for p in prompts]

    sharded = xcs.mesh_sharded(
        answer_all, MESH_2X4, in_specs=(P("data"), None), out_specs=P("data")
    )
    prompts = [f"q{i}" for i in range(20)]
    assert sharded(prompts, "A:") == [f"A:q{i}" for i in range(20)]
    assert len(chunks) == 8 and sorted(len(c) for c in chunks) == [2, 2, 2, 2, 3, 3, 3, 3]


def test_python_operator_chunks_join_arrays_and_dicts():
    @xcs.op
    def stats(texts: list) -> dict:
        return {"length": np.array([len(t) for t in texts]), "texts": list(texts)}

    sharded = xcs.mesh_sharded(stats, MESH_8X1, in_specs={"texts": P("data")}, out_specs=P("data"))
    out = sharded(["a", "bb", "ccc"])
    np.testing.assert_array_equal(out["length"], [1, 2, 3])
    assert out["texts"] == ["a", "bb", "ccc"]


def test_python_operator_with_only_replicated_inputs_runs_once():
    calls = []
    sharded = xcs.mesh_sharded(
        xcs.op(lambda q: calls.append(q) or q), MESH_2X4, in_specs=P(), out_specs=P()
    )
    assert sharded("q") == "q" and calls == ["q"]


def test_python_chunk_returning_the_wrong_number_of_rows_is_an_error():
    sharded = xcs.mesh_sharded(
        xcs.op(lambda xs: xs[:1], name="lossy"), MESH_8X1, in_specs=P("data"), out_specs=P("data")
    )
    with pytest.raises(
        TransformError, match=r"the chunk for items 0:2 returned 1 rows for 2 inputs"
    ):
        sharded(list(range(16)))


def test_python_operator_split_on_a_non_leading_axis_is_an_error():
    sharded = xcs.mesh_sharded(
        xcs.op(lambda xs: xs, name="ident"), MESH_2X4, in_specs=P(None, "model"), out_specs=P()
    )
    with pytest.raises(
        TransformError, match=r"a Python operator is split along the leading axis only"
    ):
        sharded(np.ones((4, 4)))


# --- other device counts (subprocess) ------------------------------------------------------


def run_with_devices(code: str, count: int) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={count}"
    env["JAX_PLATFORMS"] = "cpu"
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_with_two_devices_mesh_errors_and_pmap_spans_what_exists():
    proc = run_with_devices(
        """
        import jax, jax.numpy as jnp
        import ember_xcs as xcs
        try:
            xcs.DeviceMesh((2, 4), ("data", "model"))
        except xcs.TransformError as e:
            print("error:", e)
        out = xcs.pmap(lambda x: x * 2)(jnp.ones((6, 3)))
        print("devices:", len(out.sharding.device_set), out.sharding.spec)
        """,
        2,
    )
    assert proc.returncode == 0, proc.stderr
    assert "needs 8 devices but JAX sees 2" in proc.stdout
    assert "xla_force_host_platform_device_count=8" in proc.stdout
    assert (
        "devices: 2 PartitionSpec('pmap',)" in proc.stdout or "devices: 2 P('pmap',)" in proc.stdout
    )


def test_mesh_sharded_works_as_a_configured_decorator():
    @xcs.mesh_sharded(mesh=MESH_8X1, in_specs=P("data"), out_specs=P("data"))
    def double(x):
        return x * 2

    out = double(X)
    chex.assert_trees_all_close(out, X * 2)
    assert out.sharding.spec == P("data")


def test_mesh_sharded_operator_with_weights_sees_new_weights_without_retracing():
    traces = []
    layer = counting_scale(jnp.float32(2.0), traces)
    spec = xcs.PartitionSpec("data")
    sharded = xcs.mesh_sharded(layer, MESH_8X1, in_specs=spec, out_specs=spec)
    chex.assert_trees_all_close(sharded(jnp.ones((16, 3))), jnp.full((16, 3), 2.0))
    layer.w = jnp.float32(5.0)  # weights are replicated inputs, not constants baked in
    out = sharded(jnp.ones((16, 3)))
    chex.assert_trees_all_close(out, jnp.full((16, 3), 5.0))
    assert out.sharding.spec == spec
    assert len(traces) == 1
