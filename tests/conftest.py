"""Test configuration: eight simulated CPU devices, set before JAX initialises.

`XLA_FLAGS` must be in the environment before the XLA backend starts, so it is set at
import time of this conftest, which pytest loads before any test module imports JAX.
Tests that need a different device count run in a subprocess.
"""

import os

NUM_DEVICES = 8

_flag = f"--xla_force_host_platform_device_count={NUM_DEVICES}"
if _flag not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + _flag).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
