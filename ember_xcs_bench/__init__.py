"""The benchmark suite behind `ember-xcs bench` (see `benchmarks/README.md`).

A top-level package beside `ember_xcs` in the same distribution, so the installed command
runs it without the source checkout while the library's namespace stays the library's.
Modules, in the order a run uses them:

- `_programs`, `_scenarios`: the benchmark programs as composite operators;
- `_lowering`, `_case`: the same program as leaf calls, as a `Graph`, and its critical path;
- `_variants`, `_baselines`: ember_xcs contenders and hand-written baselines;
- `_timing`, `_suite`: warm-up, timed runs with answer checks, and the sections;
- `_numeric`, `_http`: numeric rows (in a subprocess with 8 devices) and HTTP rows;
- `_rows`, `_goals`, `_report`, `_plots`: results, goals, RESULTS.md, results.json, PNGs;
- `_cli`: argument parsing and the run itself.
"""
