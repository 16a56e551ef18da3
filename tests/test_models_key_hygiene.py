"""The API key never appears in reprs, log records, exception messages or a Timeline."""

from __future__ import annotations

import logging
import secrets
import traceback

import jax
import pytest

import ember_xcs as xcs
from ember_xcs.models import (
    JudgeSynthesis,
    LLMOperator,
    OpenAICompatibleModel,
    RetryPolicy,
    UniformEnsemble,
)
from ember_xcs.models.testing import Fault, OpenAITestServer

KEY = "sk-hygiene-" + secrets.token_hex(16)
WRONG_KEY = "sk-wrong-" + secrets.token_hex(16)
RETRY = RetryPolicy(max_retries=1, backoff_seconds=0.0)


@pytest.fixture
def server():
    with OpenAITestServer(api_key=KEY) as running:
        yield running


def _texts_of(error: BaseException) -> list[str]:
    return [str(error), repr(error), "".join(traceback.format_exception(error))]


def _assert_clean(texts: list[str]) -> None:
    for text in texts:
        assert KEY not in text
        assert WRONG_KEY not in text
        assert KEY[-12:] not in text  # not even a tail of it


def test_key_never_appears_in_reprs(server):
    with OpenAICompatibleModel(server.url, "m", api_key=KEY) as model:
        operator = LLMOperator(model, "{question}")
        ensemble = UniformEnsemble(2, model)
        texts = [
            repr(model),
            str(model),
            repr(operator),
            repr(ensemble),
            repr(vars(model)),
            repr(jax.tree_util.tree_structure(ensemble)),
        ]
        assert "api_key='***'" in repr(model)
        _assert_clean(texts)


def test_key_never_appears_in_log_records(server, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, aiohttp included
    server.inject(Fault.rate_limited(0.01), Fault.server_error())
    with OpenAICompatibleModel(
        server.url, "m", api_key=KEY, retry=RetryPolicy(max_retries=2, backoff_seconds=0.01)
    ) as model:
        model.complete("hello")
    assert any("retry" in r.getMessage() for r in caplog.records)
    texts = [r.getMessage() for r in caplog.records] + [repr(r.__dict__) for r in caplog.records]
    _assert_clean(texts)


def test_key_never_appears_in_exception_messages(server):
    errors = []
    with OpenAICompatibleModel(server.url, "m", api_key=WRONG_KEY, retry=RETRY) as rejected:
        with pytest.raises(xcs.ModelError) as info:
            rejected.complete("q")  # the server's 401 message quotes the key it received
        errors.append(info.value)
    assert "***" in str(errors[0])
    with OpenAICompatibleModel(server.url, "m", api_key=KEY, retry=RETRY, timeout=0.1) as model:
        for fault in (Fault.server_error(), Fault.malformed(), Fault.slow(1.0)):
            server.inject(fault, fault)
            with pytest.raises(xcs.ModelError) as info:
                model.complete("q")
            errors.append(info.value)
    with OpenAICompatibleModel(
        "http://127.0.0.1:9", "m", api_key=KEY, retry=RETRY
    ) as offline:  # port 9 (discard) is closed: connection refused
        with pytest.raises(xcs.ModelError) as info:
            offline.complete("q")
        errors.append(info.value)
    assert len(errors) == 5
    for error in errors:
        _assert_clean(_texts_of(error))


def test_key_never_appears_in_a_recorded_timeline_or_node_errors(server, caplog):
    caplog.set_level(logging.DEBUG)
    timeline = xcs.Timeline()
    offline = OpenAICompatibleModel("http://127.0.0.1:9", "m", api_key=KEY, retry=RETRY)
    with OpenAICompatibleModel(server.url, "m", api_key=KEY, retry=RETRY) as model, offline:
        graph = xcs.Graph()
        units = [graph.add_node(unit) for unit in UniformEnsemble(3, model).units]
        graph.add_node(LLMOperator(offline, "{question}"), node_id="offline")
        graph.add_node(JudgeSynthesis(model), node_id="judge")
        graph.add_edge(units[0], "judge", field_mappings={"*": "question"})
        with xcs.execution_options(hooks=(timeline,), return_partial_results=True):
            result = xcs.execute_graph(graph, {"question": "q", "judge": {"responses": ["a"]}})
    assert list(result.failures) == ["offline"]  # its error is recorded
    assert len(timeline.records) == 5  # 3 units, offline (retried inside the model), judge
    texts = [repr(timeline.records), timeline.render(), repr(result), repr(result.plan.nodes)]
    for error in result.failures.values():
        texts += _texts_of(error)
    texts += [r.getMessage() for r in caplog.records]
    _assert_clean(texts)
