"""LLM models and operators: `import ember_xcs.models as models`.

- `Model` (protocol), `ModelResponse`, `Usage`: text in, response out, sync and async.
- `SimulatedModel`: deterministic, with latency and failure injection; needs no key.
- `OpenAICompatibleModel`: a client for `/v1/chat/completions` (aiohttp on ember_xcs's
  shared event loop) with streaming, tool calls, `n` choices, retries, a shared
  concurrency cap and rate limit, an optional on-disk `ResponseCache`, and keys kept out
  of every message.
- `track_usage()`: tokens and calls of a block of code (`UsageTotals`).
- `LLMOperator`: a leaf operator rendering a prompt template and calling a model.
- Ensembles: `UniformEnsemble`, `Sequential` (composites `jit` traces through) and
  `MostCommon`, `JudgeSynthesis`, `Verifier` (leaves); `nested_ensemble` builds
  ensembles of ensemble + judge pipelines.
- Errors: `ModelError` (the same class as `ember_xcs.ModelError`) and its subclasses per
  cause (`RateLimitError`, `ServerError`, `ModelTimeoutError`...).
- `ember_xcs.models.testing`: a local OpenAI-compatible server for tests.
"""

from ._cache import ResponseCache as ResponseCache
from ._ensembles import JudgeSynthesis as JudgeSynthesis
from ._ensembles import MostCommon as MostCommon
from ._ensembles import Sequential as Sequential
from ._ensembles import UniformEnsemble as UniformEnsemble
from ._ensembles import Verdict as Verdict
from ._ensembles import Verifier as Verifier
from ._ensembles import nested_ensemble as nested_ensemble
from ._errors import ClientError as ClientError
from ._errors import MalformedResponseError as MalformedResponseError
from ._errors import ModelConfigError as ModelConfigError
from ._errors import ModelConnectionError as ModelConnectionError
from ._errors import ModelError as ModelError
from ._errors import ModelTimeoutError as ModelTimeoutError
from ._errors import PromptTemplateError as PromptTemplateError
from ._errors import RateLimitError as RateLimitError
from ._errors import ServerError as ServerError
from ._http import OpenAICompatibleModel as OpenAICompatibleModel
from ._limits import CallLimits as CallLimits
from ._llm_operator import LLMOperator as LLMOperator
from ._protocol import Model as Model
from ._protocol import ModelResponse as ModelResponse
from ._protocol import ToolCall as ToolCall
from ._protocol import Usage as Usage
from ._retry import RetryPolicy as RetryPolicy
from ._simulated import SimulatedModel as SimulatedModel
from ._usage import UsageTotals as UsageTotals
from ._usage import track_usage as track_usage

__all__ = [
    "CallLimits",
    "ClientError",
    "JudgeSynthesis",
    "LLMOperator",
    "MalformedResponseError",
    "Model",
    "ModelConfigError",
    "ModelConnectionError",
    "ModelError",
    "ModelResponse",
    "ModelTimeoutError",
    "MostCommon",
    "OpenAICompatibleModel",
    "PromptTemplateError",
    "RateLimitError",
    "ResponseCache",
    "RetryPolicy",
    "Sequential",
    "ServerError",
    "SimulatedModel",
    "ToolCall",
    "UniformEnsemble",
    "Usage",
    "UsageTotals",
    "Verdict",
    "Verifier",
    "nested_ensemble",
    "track_usage",
]
