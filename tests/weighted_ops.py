"""A numeric operator with one weight, shared by the tests that change weights."""

from __future__ import annotations

from typing import Any

import ember_xcs as xcs


def counting_scale(w: Any, traces: list) -> xcs.Operator:
    """`x * w` as a numeric operator; `traces` gets one entry each time JAX traces it."""

    class Scale(xcs.Operator):
        numeric = True

        def __init__(self, w: Any):
            self.w = w

        def forward(self, x: Any) -> Any:
            traces.append(x.shape)
            return x * self.w

    return Scale(w)
