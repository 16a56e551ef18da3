"""Errors raised by models and LLM operators; all are `ember_xcs.ModelError`s.

```
ModelError
├── ModelConfigError       a model or operator was built with an invalid setting
├── PromptTemplateError    a prompt cannot be rendered from the arguments (also a TypeError)
├── RateLimitError         HTTP 429 (retryable; carries `retry_after`)
├── ServerError            HTTP 5xx (retryable)
├── ClientError            any other HTTP 4xx, e.g. 401 (not retried)
├── ModelTimeoutError      connect or read timeout (retryable; also a TimeoutError)
├── ModelConnectionError   connection refused or reset (retryable; also a ConnectionError)
└── MalformedResponseError the body is not a chat completion (not retried)
```

Backend errors carry `model`, `endpoint`, `status` (or `None`), `attempts` and
`retryable`, and their message names the model and the endpoint. Messages are built by
this package only from the model name, the URL and the server's text after the API key
has been scrubbed out, so no key can reach an exception.
"""

from __future__ import annotations

from .._errors import ModelError

__all__ = [
    "ClientError",
    "ModelConfigError",
    "ModelError",
    "MalformedResponseError",
    "ModelConnectionError",
    "ModelTimeoutError",
    "PromptTemplateError",
    "RateLimitError",
    "ServerError",
]


class ModelConfigError(ModelError, ValueError):
    """A model, limit or operator was configured with an invalid value."""


class PromptTemplateError(ModelError, TypeError):
    """A prompt cannot be rendered: a placeholder has no value, or an argument is wrong."""


class _CallError(ModelError):
    """A failed call to a model backend; see the module docstring for the attributes."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        model: str,
        endpoint: str,
        status: int | None = None,
        attempts: int = 1,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.model = model
        self.endpoint = endpoint
        self.status = status
        self.attempts = attempts
        self.retry_after = retry_after


class RateLimitError(_CallError):
    """The backend answered HTTP 429 Too Many Requests."""

    retryable = True


class ServerError(_CallError):
    """The backend answered with a 5xx status."""

    retryable = True


class ClientError(_CallError):
    """The backend rejected the request (4xx other than 408/429): fix the request."""


class ModelTimeoutError(_CallError, TimeoutError):
    """Connecting or reading took longer than the configured timeout."""

    retryable = True


class ModelConnectionError(_CallError, ConnectionError):
    """The connection was refused, reset or could not be made."""

    retryable = True


class MalformedResponseError(_CallError):
    """The backend answered 2xx with a body that is not a chat completion."""
