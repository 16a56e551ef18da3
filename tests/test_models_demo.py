"""The mixed demo pipeline (`ember-xcs demo`) runs, agrees with itself and overlaps calls."""

from __future__ import annotations

import re

from ember_xcs._demo_pipeline import run_mixed_demo


def test_mixed_demo_prints_a_table_with_the_same_answer_in_every_run(capsys):
    assert run_mixed_demo(quick=True) == 0
    out = capsys.readouterr().out
    assert "on a 8-device mesh" in out
    assert re.search(r"jit plan: 16 operator calls -> \d+ nodes \(\d+ compiled numeric", out)
    assert re.search(r"^jit, parallel +[\d.]+ +[\d.]+ +8 +[\d.]+x$", out, re.MULTILINE)
    assert re.search(r"^plain Python +[\d.]+ +[\d.]+ +1 +1\.0x$", out, re.MULTILINE)
    assert "same answer in every run: True" in out
