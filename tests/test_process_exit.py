"""A program that ends right after a jitted call exits cleanly.

The lone-call starter (and the progress bar's drawer) are daemon threads that wake up
every few milliseconds for a second after a call. A daemon thread that wakes during the
interpreter's finalization is ended from inside its sleep, which aborts the process
(SIGABRT, `FATAL: exception not rethrown`) once JAX's C++ runtime is loaded; both
threads are therefore stopped by an `atexit` hook. The script runs in a subprocess.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import jax, jax.numpy as jnp
    import ember_xcs as xcs

    docs = jnp.asarray(jax.random.normal(jax.random.key(0), (64, 32)))

    @xcs.op
    def ask(prompt):
        return prompt

    @xcs.op(numeric=True)
    def rank(docs, q, k):
        return jnp.argsort(-(docs @ q))[:k]

    @xcs.jit
    def pick(q, k):
        idx = rank(docs, q, k)  # a lone call: the starter watches it
        return ask(f"{[int(i) for i in idx]}")

    for _ in range(20):
        pick(jnp.ones(32), 4)
    print("done")
    """
)


def test_a_script_ending_right_after_jitted_calls_exits_with_status_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "done"
    assert "FATAL" not in proc.stderr


DRAWN = textwrap.dedent(
    """
    import io, threading
    from contextlib import redirect_stderr
    import jax.numpy as jnp
    import ember_xcs as xcs

    jnp.ones(3).block_until_ready()  # JAX's C++ runtime is loaded

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    @xcs.op
    def ask(prompt):
        return prompt

    pipeline = xcs.jit(lambda q: [ask(q), ask(q + "?")])
    with redirect_stderr(Terminal()), xcs.execution_options(progress=0):
        pipeline("q")
    alive = [t.name for t in threading.enumerate() if t.name == "ember-xcs-progress"]
    print("drawer running" if alive else "no drawer")
    """
)


def test_a_script_ending_while_the_progress_drawer_runs_exits_with_status_0() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", DRAWN], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == "drawer running"  # it was still running at exit
    assert "FATAL" not in proc.stderr
