"""LLM models and operators: `import ember_xcs.models as models`.

- `Model` (protocol), `ModelResponse`, `Usage`: text in, response out, sync and async.
- `SimulatedModel`: deterministic, with latency and failure injection; needs no key.
- `OpenAICompatibleModel`: an httpx client for `/v1/chat/completions` with retries, a
  shared concurrency cap and rate limit, and keys kept out of every message.
- `LLMOperator`: a leaf operator rendering a prompt template and calling a model.
- Ensembles: `UniformEnsemble`, `Sequential` (composites `jit` traces through) and
  `MostCommon`, `JudgeSynthesis`, `Verifier` (leaves); `nested_ensemble` builds
  ensembles of ensemble + judge pipelines.
- `ember_xcs.models.testing`: a local OpenAI-compatible server for tests.
"""

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
from ._errors import ModelTimeoutError as ModelTimeoutError
from ._errors import PromptTemplateError as PromptTemplateError
from ._errors import RateLimitError as RateLimitError
from ._errors import ServerError as ServerError
from ._http import OpenAICompatibleModel as OpenAICompatibleModel
from ._limits import CallLimits as CallLimits
from ._llm_operator import LLMOperator as LLMOperator
from ._protocol import Model as Model
from ._protocol import ModelResponse as ModelResponse
from ._protocol import Usage as Usage
from ._retry import RetryPolicy as RetryPolicy
from ._simulated import SimulatedModel as SimulatedModel

__all__ = [
    "CallLimits",
    "ClientError",
    "JudgeSynthesis",
    "LLMOperator",
    "MalformedResponseError",
    "Model",
    "ModelConfigError",
    "ModelConnectionError",
    "ModelResponse",
    "ModelTimeoutError",
    "MostCommon",
    "OpenAICompatibleModel",
    "PromptTemplateError",
    "RateLimitError",
    "RetryPolicy",
    "Sequential",
    "ServerError",
    "SimulatedModel",
    "UniformEnsemble",
    "Usage",
    "Verdict",
    "Verifier",
    "nested_ensemble",
]
