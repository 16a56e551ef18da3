"""jit: trace once, replay a parallel plan; dynamic dispatch when tracing cannot work.

The package is `_jit` so that `ember_xcs.jit` is only ever the function. Modules, one
concept each: `_symbols` (placeholders and trace-stop reasons), `_templates`
(argument/output snapshots), `_tracer` (the call handler), `_plans` (traces to execution
plans, and replaying them), `_numeric` (numeric segments under `jax.jit`), `_dynamic`
(dynamic dispatch onto the engine's `Run`), `_containers` (the containers jit looks
inside), `_keys` (cache keys), `_cache` (LRU), `_strategies` (choosing per signature),
`_jit` (the decorator), `_async` (refusing `async def` bodies), `_stats`, `_explain`,
`_autograph`.
"""

from ._autograph import autograph as autograph
from ._explain import explain_jit_selection as explain_jit_selection
from ._explain import get_jit_stats as get_jit_stats
from ._explain import get_jit_strategy_used as get_jit_strategy_used
from ._explain import is_jit_compiled as is_jit_compiled
from ._jit import JittedFunction as JittedFunction
from ._jit import jit as jit
from ._jit import structural_jit as structural_jit
from ._modes import JITMode as JITMode
