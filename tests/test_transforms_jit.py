"""Transformed callables inside `xcs.jit`: numeric ones are numeric leaves that keep their
shardings and compile once; Python ones are leaf calls the scheduler runs."""

from __future__ import annotations

import chex
import jax.numpy as jnp

import ember_xcs as xcs

P = xcs.PartitionSpec
MESH = xcs.DeviceMesh((2, 4), ("data", "model"))
X = jnp.arange(8 * 16.0).reshape(8, 16) / 100
W = jnp.linspace(-1, 1, 16 * 8).reshape(16, 8)


def test_jit_of_mesh_sharded_equals_unsharded_keeps_sharding_and_compiles_once():
    traces = []

    def project(x, w):
        traces.append(x.shape)
        return jnp.tanh(x @ w)

    sharded = xcs.mesh_sharded(
        project, MESH, in_specs=(P("data", None), P(None, "model")), out_specs=P("data", "model")
    )
    jitted = xcs.jit(sharded)
    for scale in (1.0, 2.0, 3.0):
        out = jitted(X * scale, W)
        chex.assert_trees_all_close(out, jnp.tanh((X * scale) @ W), rtol=1e-5, atol=1e-6)
        assert out.sharding.spec == P("data", "model")
    assert len(traces) == 1


def test_jit_pipeline_with_python_vmap_and_numeric_mesh_sharded_step():
    asked = []

    @xcs.op
    def llm(prompt: str) -> str:
        asked.append(prompt)
        return prompt.upper()

    ask_all = xcs.vmap(llm)
    project = xcs.mesh_sharded(
        lambda x, w: x @ w,
        MESH,
        in_specs=(P("data"), P(None, "model")),
        out_specs=P("data", "model"),
    )

    @xcs.jit
    def pipeline(prompts, x, w):
        return ask_all(prompts), project(x, w)

    for round_ in range(2):
        prompts = [f"q{round_}-{i}" for i in range(3)]
        answers, y = pipeline(prompts, X + round_, W)
        assert answers == [p.upper() for p in prompts]
        chex.assert_trees_all_close(y, (X + round_) @ W, rtol=1e-5, atol=1e-6)
    assert len(asked) == 6  # every call once per pipeline call, never replayed
