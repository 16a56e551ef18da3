"""Scheduling: the engine loop, executors, schedulers, hooks and `execute_graph`."""

from ._engine import EngineStatus as EngineStatus
from ._engine import Run as Run
from ._engine import engine_status as engine_status
from ._engine import run_plan as run_plan
from ._execute import execute_graph as execute_graph
from ._executors import Executor as Executor
from ._executors import InlineExecutor as InlineExecutor
from ._executors import ThreadExecutor as ThreadExecutor
from ._executors import deliver as deliver
from ._hooks import ExecutionHooks as ExecutionHooks
from ._hooks import NodeRecord as NodeRecord
from ._hooks import Timeline as Timeline
from ._node_call import NodeCall as NodeCall
from ._plan import ExecutionPlan as ExecutionPlan
from ._plan import PlanNode as PlanNode
from ._plan import plan_for_graph as plan_for_graph
from ._pool import WorkerPool as WorkerPool
from ._pool import shared_pool as shared_pool
from ._result import ExecutionResult as ExecutionResult
from ._result import ExecutionStats as ExecutionStats
from ._schedulers import EngineScheduler as EngineScheduler
from ._schedulers import Scheduler as Scheduler
from ._schedulers import available_schedulers as available_schedulers
from ._schedulers import register_scheduler as register_scheduler
from ._schedulers import resolve_scheduler as resolve_scheduler
