"""ember_xcs: an execution layer for compound AI systems.

Python/LLM operators run on a dataflow graph scheduler; numeric code goes to JAX; one
`jit` stitches both. This module is the public API: explicit re-exports only.
"""

from ._errors import CycleError as CycleError
from ._errors import DuplicateNodeError as DuplicateNodeError
from ._errors import ExecutionError as ExecutionError
from ._errors import ExecutionTimeoutError as ExecutionTimeoutError
from ._errors import FieldMappingError as FieldMappingError
from ._errors import GraphError as GraphError
from ._errors import MissingInputError as MissingInputError
from ._errors import ModelError as ModelError
from ._errors import NodeExecutionError as NodeExecutionError
from ._errors import OptionsError as OptionsError
from ._errors import TraceError as TraceError
from ._errors import TransformError as TransformError
from ._errors import UnknownNodeError as UnknownNodeError
from ._errors import XCSError as XCSError
from ._jit import JITMode as JITMode
from ._jit import autograph as autograph
from ._jit import explain_jit_selection as explain_jit_selection
from ._jit import get_jit_stats as get_jit_stats
from ._jit import get_jit_strategy_used as get_jit_strategy_used
from ._jit import is_jit_compiled as is_jit_compiled
from ._jit import jit as jit
from ._jit import structural_jit as structural_jit
from ._options import ExecutionOptions as ExecutionOptions
from ._options import execution_options as execution_options
from .graph import Graph as Graph
from .graph import PassReport as PassReport
from .graph import XCSGraph as XCSGraph
from .graph import identity_mapping as identity_mapping
from .graph import prefix_mapping as prefix_mapping
from .operators import Operator as Operator
from .operators import op as op
from .scheduling import EngineScheduler as EngineScheduler
from .scheduling import EngineStatus as EngineStatus
from .scheduling import ExecutionHooks as ExecutionHooks
from .scheduling import ExecutionPlan as ExecutionPlan
from .scheduling import ExecutionResult as ExecutionResult
from .scheduling import ExecutionStats as ExecutionStats
from .scheduling import Scheduler as Scheduler
from .scheduling import Timeline as Timeline
from .scheduling import engine_status as engine_status
from .scheduling import execute_graph as execute_graph
from .scheduling import register_scheduler as register_scheduler
from .transforms import DeviceMesh as DeviceMesh
from .transforms import PartitionSpec as PartitionSpec
from .transforms import mesh_sharded as mesh_sharded
from .transforms import pmap as pmap
from .transforms import vmap as vmap

__version__ = "0.1.0"
