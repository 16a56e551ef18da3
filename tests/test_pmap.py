"""`xcs.pmap`: numeric batches split over devices with `jax.shard_map` (same answers as
unsharded code, outputs sharded over the devices), Python operators over workers in input
order, and compositions with `vmap`."""

from __future__ import annotations

import re
import time

import chex
import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from in_flight import InFlight
from jax.sharding import NamedSharding, PartitionSpec
from weighted_ops import counting_scale

import ember_xcs as xcs
from ember_xcs import NodeExecutionError, TransformError


def normalize(x):
    return x / jnp.linalg.norm(x)


ROWS = jnp.arange(1.0, 16 * 5 + 1).reshape(16, 5)


def test_numeric_pmap_equals_unsharded_computation():
    chex.assert_trees_all_close(xcs.pmap(normalize)(ROWS), jax.vmap(normalize)(ROWS), rtol=1e-6)


def test_numeric_pmap_output_is_sharded_over_all_eight_devices_along_the_batch():
    out = xcs.pmap(normalize)(ROWS)
    assert isinstance(out.sharding, NamedSharding)
    assert out.sharding.spec == PartitionSpec("pmap")
    assert out.sharding.device_set == set(jax.devices())
    assert {s.data.shape for s in out.addressable_shards} == {(2, 5)}


def test_numeric_pmap_uses_the_first_num_workers_devices():
    out = xcs.pmap(normalize, num_workers=4)(ROWS[:8])
    assert out.sharding.device_set == set(jax.devices()[:4])
    chex.assert_trees_all_close(out, jax.vmap(normalize)(ROWS[:8]), rtol=1e-6)


def test_numeric_pmap_runs_on_exactly_the_devices_given():
    devices = jax.devices()[4:]
    out = xcs.pmap(normalize, devices=devices)(ROWS[:4])
    assert out.sharding.device_set == set(devices)


def test_numeric_pmap_follows_in_axes_and_out_axes():
    def scale(x, factor):
        return x * factor

    cols = ROWS.T  # batch along axis 1
    out = xcs.pmap(scale, in_axes=(1, None), out_axes=1)(cols, 3.0)
    chex.assert_trees_all_close(out, cols * 3.0)
    assert out.sharding.spec == PartitionSpec(None, "pmap")


def test_numeric_pmap_axis_name_gives_collectives_over_devices():
    out = xcs.pmap(lambda x: x / jax.lax.psum(x, "i"), axis_name="i")(jnp.arange(1.0, 9.0))
    chex.assert_trees_all_close(out, jnp.arange(1.0, 9.0) / 36.0)


def test_numeric_pmap_handles_pytrees_and_keyword_arguments():
    def combine(pair, *, bias):
        return {"sum": pair[0] + pair[1] + bias}

    pair = (ROWS, ROWS * 2)
    out = xcs.pmap(combine)(pair, bias=jnp.ones((16, 5)))
    chex.assert_trees_all_close(out["sum"], ROWS * 3 + 1)


def test_numeric_pmap_traces_once_per_new_shape_not_per_call():
    traces = []

    def f(x):
        traces.append(x.shape)
        return x + 1

    mapped = xcs.pmap(f)
    for _ in range(4):
        mapped(jnp.ones((8, 2)))
    mapped(jnp.ones((16, 2)))
    mapped(jnp.ones((16, 2)))
    assert len(traces) == 2


def test_pmap_of_vmap_maps_inner_batches_per_device():
    inner = xcs.vmap(lambda v: v.sum())
    data = jnp.arange(8 * 3 * 4.0).reshape(8, 3, 4)
    out = xcs.pmap(inner)(data)
    chex.assert_trees_all_close(out, data.sum(-1))
    assert out.sharding.spec == PartitionSpec("pmap")


def test_vmap_of_pmap_maps_an_outer_batch_over_a_sharded_inner_one():
    outer = xcs.vmap(xcs.pmap(normalize))
    data = jnp.arange(1.0, 3 * 8 * 2 + 1).reshape(3, 8, 2)
    chex.assert_trees_all_close(outer(data), jax.vmap(jax.vmap(normalize))(data), rtol=1e-6)


def test_pmap_works_as_bare_and_configured_decorator():
    @xcs.pmap
    def twice(x):
        return 2 * x

    @xcs.pmap(num_workers=2)
    def thrice(x):
        return 3 * x

    chex.assert_trees_all_close(twice(jnp.ones(8)), 2 * jnp.ones(8))
    chex.assert_trees_all_close(thrice(jnp.ones(4)), 3 * jnp.ones(4))


# --- errors -------------------------------------------------------------------------------


def test_batch_not_divisible_by_devices_is_an_error_naming_sizes_and_fixes():
    with pytest.raises(
        TransformError,
        match=r"pmap\(normalize\): the batch has 10 items \(x along axis 0\), which does not "
        r"split evenly over 8 devices; pad the batch to a multiple of 8, pass num_workers=5 or 2",
    ):
        xcs.pmap(normalize)(ROWS[:10])


def test_axis_name_with_more_items_than_devices_is_an_error():
    with pytest.raises(
        TransformError,
        match=r"axis_name='i'.*needs exactly one item per device, but the batch has 16 items",
    ):
        xcs.pmap(lambda x: jax.lax.psum(x, "i"), axis_name="i")(jnp.ones(16))


def total(x):
    return jax.lax.psum(jnp.sum(x), "i")


@pytest.mark.parametrize(
    ("size", "kwargs", "fix"),
    [
        (16, {}, "JAX sees 8 devices, so reshape the batch axis into 8 items of 2 (fn then "),
        (10, {}, "reshape the batch axis into 5 items of 2 and pass num_workers=5 (fn then "),
        (4, {}, "for 8 devices; pass num_workers=4, or drop axis_name"),
        (8, {"num_workers": 4}, "for 4 devices; pass num_workers=8, or drop axis_name"),
        (2, {"devices": jax.devices()[:4]}, "for 4 devices; pass 2 devices, or drop axis_name"),
        (17, {}, "JAX sees 8 devices, so call it on at most 8 items at a time, or drop"),
        (0, {}, "for 8 devices; pass at least one item, or drop axis_name"),
    ],
)
def test_axis_name_batch_mismatch_suggests_a_fix_the_devices_allow(size, kwargs, fix):
    assert jax.device_count() == 8  # conftest simulates eight CPU devices
    with pytest.raises(TransformError) as info:
        xcs.pmap(total, axis_name="i", **kwargs)(jnp.ones(size))
    message = str(info.value)
    assert fix in message
    assert all(int(n) <= 8 for n in re.findall(r"num_workers=(\d+)", message))


def test_following_the_axis_name_advice_gives_the_collective_over_the_whole_batch():
    batch = jnp.arange(16.0)
    with pytest.raises(TransformError, match="reshape the batch axis into 8 items of 2"):
        xcs.pmap(total, axis_name="i")(batch)
    out = xcs.pmap(total, axis_name="i")(batch.reshape(8, 2))
    chex.assert_trees_all_close(out, jnp.full(8, batch.sum()))
    with pytest.raises(TransformError, match="into 5 items of 2 and pass num_workers=5"):
        xcs.pmap(total, axis_name="i")(batch[:10])
    out = xcs.pmap(total, axis_name="i", num_workers=5)(batch[:10].reshape(5, 2))
    chex.assert_trees_all_close(out, jnp.full(5, batch[:10].sum()))


def test_more_workers_than_devices_says_how_to_simulate_more():
    with pytest.raises(
        TransformError,
        match=r"needs 16 devices but JAX sees 8 \(cpu\); to simulate 16 CPU devices set "
        r"XLA_FLAGS=--xla_force_host_platform_device_count=16.*jax_num_cpu_devices",
    ):
        xcs.pmap(normalize, num_workers=16)(jnp.ones((16, 2)))


def test_num_workers_must_be_positive():
    with pytest.raises(TransformError, match=r"num_workers must be a positive int or None, got 0"):
        xcs.pmap(normalize, num_workers=0)


def test_num_workers_disagreeing_with_devices_is_an_error():
    with pytest.raises(TransformError, match=r"num_workers=2 but 4 devices were given"):
        xcs.pmap(normalize, num_workers=2, devices=jax.devices()[:4])(jnp.ones((4, 2)))


def test_pmap_batch_size_mismatch_names_arguments():
    with pytest.raises(
        TransformError, match=r"a has size 8 along axis 0, b has size 16 along axis 0"
    ):
        xcs.pmap(lambda a, b: a + b)(jnp.ones(8), jnp.ones(16))


# --- Python operators ---------------------------------------------------------------------


def test_python_pmap_gathers_results_in_input_order():
    @xcs.op
    def slow(text: str) -> str:
        time.sleep(0.04 if text in "ac" else 0.0)
        return text.upper()

    assert xcs.pmap(slow, num_workers=3)(list("abcde")) == list("ABCDE")


def test_python_pmap_keeps_at_most_num_workers_calls_in_flight():
    counter = InFlight(0.02)
    call = counter.op

    assert xcs.pmap(call, num_workers=3)(list("abcdefgh")) == list("abcdefgh")
    assert 2 <= counter.peak <= 3


def test_python_pmap_does_not_need_a_batch_divisible_by_devices():
    assert xcs.pmap(xcs.op(lambda s: s + "!"))(list("abc")) == ["a!", "b!", "c!"]


def test_python_pmap_never_drops_a_failing_shard():
    @xcs.op
    def fragile(n: int) -> int:
        if n == 5:
            raise RuntimeError("shard lost")
        return n

    with pytest.raises(NodeExecutionError, match=r"'fragile\[5\]'.*RuntimeError: shard lost"):
        xcs.pmap(fragile, num_workers=4)(list(range(8)))


def test_pmap_of_python_vmap_runs_nested_batches_in_order():
    inner = xcs.vmap(xcs.op(lambda s: s * 2, name="double"))
    assert xcs.pmap(inner, num_workers=2)([["a", "b"], ["c"]]) == [["aa", "bb"], ["cc"]]


@settings(max_examples=8, deadline=None)
@given(
    per_device=st.integers(1, 3), features=st.integers(1, 4), workers=st.sampled_from([1, 2, 4, 8])
)
def test_numeric_pmap_equals_vmap_for_random_shapes_and_worker_counts(
    per_device, features, workers
):
    x = jnp.arange(float(per_device * workers * features)).reshape(per_device * workers, features)
    out = xcs.pmap(normalize, num_workers=workers)(x + 1)
    chex.assert_trees_all_close(out, jax.vmap(normalize)(x + 1), rtol=1e-6)
    assert len(out.sharding.device_set) == workers


def test_pmap_of_an_empty_batch_returns_empty_results():
    assert xcs.pmap(normalize)(jnp.zeros((0, 5))).shape == (0, 5)
    assert xcs.pmap(xcs.op(lambda s: s, name="echo"))([]) == []


def test_numeric_pmap_of_operator_with_weights_sees_new_weights_without_retracing():
    traces = []
    layer = counting_scale(jnp.float32(2.0), traces)
    sharded = xcs.pmap(layer)
    chex.assert_trees_all_close(sharded(jnp.ones((8, 3))), jnp.full((8, 3), 2.0))
    layer.w = jnp.float32(5.0)  # weights are jit arguments, not constants baked in
    chex.assert_trees_all_close(sharded(jnp.ones((8, 3))), jnp.full((8, 3), 5.0))
    assert len(traces) == 1
