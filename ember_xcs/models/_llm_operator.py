"""`LLMOperator`: a leaf operator that renders a prompt template and calls a model.

The template's placeholders are the operator's parameters: `LLMOperator(model,
"Q: {question}\\nA:")` has the signature `(question)`, so graphs bind inputs to it by name,
`jit` sees an ordinary call, and a missing value is reported by placeholder name before any
request is sent. It is a leaf (it holds a model, not operators), so under `jit` every
`LLMOperator` call is one graph node, and independent ones run concurrently.

Over a model that declares `async_native = True` (the HTTP model), the engine runs the
operator as an `async def` leaf (`async_leaf()`, an `operators.method_leaf` over
`aforward`), whether the call comes from a jitted body, a node of an explicit `Graph` or
`vmap`: it is awaited on the engine's event loop, so a hundred calls in flight hold no
worker thread. Called plainly, it answers synchronously as before.

A subclass changes what is asked and what is returned by overriding `prompt(...)` (the
text sent for the call's arguments) and `finish(text, ...)` (the result for a reply); the
sync and async paths share both.
"""

from __future__ import annotations

import inspect
import string
from collections.abc import Callable, Mapping
from typing import Any

from ..operators import Operator, current_call_handler, method_leaf
from ._errors import ModelConfigError, PromptTemplateError
from ._protocol import Model

__all__ = ["LLMOperator", "instance_signature", "template_placeholders"]


class instance_signature:  # noqa: N801 - used as a decorator, like `property`
    """`__signature__` for instances only: the class itself keeps its `__init__` signature,
    so `inspect.signature(LLMOperator)` works (IDE and Jupyter signature help)."""

    def __init__(self, compute: Callable[[Any], inspect.Signature]):
        self.compute = compute

    def __get__(self, instance: Any, owner: type) -> inspect.Signature | None:
        return None if instance is None else self.compute(instance)


def template_placeholders(template: str) -> tuple[str, ...]:
    """The top-level names a `str.format` template needs, in order of first use.

    `"{doc.title} by {author} ({doc.year})"` needs `("doc", "author")`.
    """
    if not isinstance(template, str):
        raise ModelConfigError(f"a prompt template must be a str, got {type(template).__name__}")
    names: dict[str, None] = {}
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ModelConfigError(f"invalid prompt template {template!r}: {exc}") from None
    for _, field, _, _ in parsed:
        if field is None:
            continue
        name = field.split(".", 1)[0].split("[", 1)[0]
        if not name.isidentifier():
            raise ModelConfigError(
                f"prompt template {template!r} has the placeholder {{{field}}}; "
                f"use named placeholders such as {{question}}"
            )
        names[name] = None
    return tuple(names)


class LLMOperator(Operator):
    """Render `prompt_template` from the call's arguments, ask `model`, optionally parse.

    **Arguments:**

    - `model`: any `Model` (`SimulatedModel`, `OpenAICompatibleModel`, your own).
    - `prompt_template`: a `str.format` template; its placeholders are the parameters.
    - `parse`: applied to the response text; the operator returns its result (default:
      the text itself).
    - `sample`: the sample index passed to the model (ensembles give each unit its own).
    - `params`: extra request options for every call, e.g. `{"temperature": 0.7}`.
    - `name`: the name shown in graphs, timelines and errors.
    - `stream`: request the reply as a stream, so hooks with `on_stream_delta` see the
      text as it arrives (the operator still returns the whole text).

    !!! example
        ```python
        ask = LLMOperator(SimulatedModel(), "Capital of {country}?", parse=str.strip)
        ask("France")            # or ask(country="France")
        ```
    """

    def __init__(
        self,
        model: Model,
        prompt_template: str = "{question}",
        parse: Callable[[str], Any] | None = None,
        *,
        sample: int = 0,
        params: Mapping[str, Any] | None = None,
        name: str | None = None,
        stream: bool = False,
    ):
        if not callable(getattr(model, "complete", None)):
            raise ModelConfigError(
                f"{type(self).__name__} needs a Model (an object with complete()), "
                f"got {type(model).__name__}"
            )
        if parse is not None and not callable(parse):
            raise ModelConfigError(f"parse must be callable, got {type(parse).__name__}")
        self.model = model
        self.prompt_template = prompt_template
        self.parse = parse
        self.sample = sample
        self.params = dict(params or {})
        self.stream = stream
        self._placeholders = template_placeholders(prompt_template)
        self._name = name or type(self).__name__

    @property
    def name(self) -> str:
        return self._name

    @instance_signature
    def __signature__(self) -> inspect.Signature:
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return inspect.Signature([inspect.Parameter(p, kind) for p in self._placeholders])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        handler = current_call_handler()
        if handler is None:
            return self.forward(*args, **kwargs)
        leaf = self.async_leaf()
        return handler(self if leaf is None else leaf, args, kwargs)

    def async_leaf(self) -> Operator | None:
        """The leaf awaiting `aforward` on the engine's event loop, which jit, explicit graphs
        and `vmap` run instead of `forward` when the model is async-native (the HTTP
        model); None otherwise, or when a subclass replaced `forward` but not `aforward`."""
        if not getattr(self.model, "async_native", False):
            return None
        cls = type(self)
        if cls.forward is not LLMOperator.forward and cls.aforward is LLMOperator.aforward:
            return None  # the subclass's own forward must run
        return method_leaf(self, "aforward", self.name, True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Fill the placeholders (positionally in order of first use, or by name) and call."""
        return self.finish(self._text(self.prompt(*args, **kwargs)), *args, **kwargs)

    async def aforward(self, *args: Any, **kwargs: Any) -> Any:
        """`forward` with `await model.acomplete(...)` (or `astream`)."""
        prompt = self.prompt(*args, **kwargs)
        if self.stream:
            pieces = self.model.astream(prompt, sample=self.sample, **self.params)
            text = "".join([piece async for piece in pieces])
        else:
            text = (await self.model.acomplete(prompt, sample=self.sample, **self.params)).text
        return self.finish(text, *args, **kwargs)

    def prompt(self, *args: Any, **kwargs: Any) -> str:
        """The prompt for a call's arguments."""
        return self.render(self._bind(args, kwargs))

    def finish(self, text: str, /, *args: Any, **kwargs: Any) -> Any:
        """The operator's result for the reply `text` to a call with these arguments."""
        return self.parse(text) if self.parse is not None else text

    def render(self, values: Mapping[str, Any]) -> str:
        """The prompt for `values`; raises `PromptTemplateError` naming missing placeholders."""
        missing = [p for p in self._placeholders if p not in values]
        if missing:
            raise PromptTemplateError(
                f"{self.name}: no value for placeholder(s) {', '.join(missing)} of the prompt "
                f"template {_short(self.prompt_template)}; pass them as arguments, e.g. "
                f"{self.name}({', '.join(f'{m}=...' for m in missing)})"
            )
        return self.prompt_template.format_map({p: values[p] for p in self._placeholders})

    def call_model(self, prompt: str) -> Any:
        """Send `prompt` to the model and parse the text of the response."""
        text = self._text(prompt)
        return self.parse(text) if self.parse is not None else text

    def _text(self, prompt: str) -> str:
        if self.stream:
            return "".join(self.model.stream(prompt, sample=self.sample, **self.params))
        return self.model.complete(prompt, sample=self.sample, **self.params).text

    def _bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        names = self._placeholders
        if len(args) > len(names):
            raise PromptTemplateError(
                f"{self.name} takes {len(names)} argument(s) ({', '.join(names) or 'none'}) "
                f"but got {len(args)} positional"
            )
        values = dict(zip(names, args, strict=False))
        unexpected = sorted(set(kwargs) - set(names))
        if unexpected:
            raise PromptTemplateError(
                f"{self.name} got argument(s) {', '.join(unexpected)} that its prompt template "
                f"does not use; its placeholders are {', '.join(names) or 'none'}"
            )
        twice = sorted(set(kwargs) & set(values))
        if twice:
            raise PromptTemplateError(f"{self.name} got {', '.join(twice)} twice")
        values.update(kwargs)
        return values


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")
