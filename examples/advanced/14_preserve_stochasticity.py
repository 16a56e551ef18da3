"""Randomness under `jit`: what `jax.jit` freezes, and how to keep it.

Purpose: a numeric operator that draws Python-level random noise (NumPy's generator, not
a JAX key). `xcs.jit` compiles numeric segments with `jax.jit`, and `jax.jit` runs the
Python body once per input shape: the draw happens at trace time and the noise is the
same on every call. `preserve_stochasticity=True` keeps numeric operators out of
`jax.jit`; `@xcs.op(numeric=True, stochastic=True)` marks one operator as never compiled.
Explicit JAX keys passed as inputs are the JAX way, and compile fine.

Features: `xcs.jit(preserve_stochasticity=True)`, `xcs.op(stochastic=True)`,
`xcs.get_jit_stats(...).xla_compiles`, a JAX key as an input.

How to run:

    python examples/advanced/14_preserve_stochasticity.py
"""

# expect: ^compiled: 1 distinct noise value over 3 calls \(frozen at trace time\)$
# expect: ^preserve_stochasticity=True: 3 distinct values over 3 calls$
# expect: ^stochastic=True operator: 3 distinct values over 3 calls$
# expect: ^JAX key as an input: 3 distinct values over 3 calls, compiled once: True$

import jax
import jax.numpy as jnp
import numpy as np

import ember_xcs as xcs

rng = np.random.default_rng(0)


@xcs.op(numeric=True)
def add_noise(x):
    return x + rng.normal()  # Python-level randomness: runs when JAX traces


@xcs.op(numeric=True, stochastic=True)
def add_fresh_noise(x):
    return x + rng.normal()


@xcs.op(numeric=True)
def add_key_noise(x, key):
    return x + jax.random.normal(
        key
    )  # randomness from an input: compiles once


def distinct(fn, *args_per_call):
    return len({float(fn(*args)) for args in args_per_call})


x = jnp.float32(0.0)
three = [(x,)] * 3
compiled = xcs.jit(lambda x: add_noise(x))
print(
    f"compiled: {distinct(compiled, *three)} distinct noise value over 3 calls (frozen at trace time)"
)

kept = xcs.jit(lambda x: add_noise(x), preserve_stochasticity=True)
print(
    f"preserve_stochasticity=True: {distinct(kept, *three)} distinct values over 3 calls"
)

marked = xcs.jit(lambda x: add_fresh_noise(x))
print(
    f"stochastic=True operator: {distinct(marked, *three)} distinct values over 3 calls"
)

keyed = xcs.jit(lambda x, key: add_key_noise(x, key))
keys = [(x, jax.random.key(i)) for i in range(3)]
values = distinct(keyed, *keys)
once = xcs.get_jit_stats(keyed).xla_compiles == 1
print(
    f"JAX key as an input: {values} distinct values over 3 calls, compiled once: {once}"
)
