"""Bad settings are refused at construction with clear errors; keys never leak, whatever
shape they come in; replies the server garbles keep what they can; the timeout covers the
whole request."""

from __future__ import annotations

import inspect
import logging
import secrets
import traceback

import pytest

from ember_xcs import models
from ember_xcs.models import (
    ClientError,
    ModelConfigError,
    ModelTimeoutError,
    OpenAICompatibleModel,
    RetryPolicy,
)
from ember_xcs.models.testing import Fault, OpenAITestServer

KEY = "sk-settings-" + secrets.token_hex(16)
NO_RETRY = RetryPolicy(max_retries=0)


@pytest.fixture(scope="module")
def server():
    with OpenAITestServer(api_key=KEY) as running:
        yield running


def _everything_said(error: BaseException, caplog) -> str:
    records = [r.getMessage() + repr(r.__dict__) for r in caplog.records]
    return "\n".join([str(error), repr(error), *traceback.format_exception(error), *records])


# --- base_url and timeouts (issue 11, D5) ---------------------------------------------------


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/v1", "localhost:8000"])
def test_non_http_base_url_is_refused_at_construction(url):
    with pytest.raises(ModelConfigError, match=r"must be an http:// or https:// URL"):
        OpenAICompatibleModel(url, "m")


def test_malformed_base_url_is_refused_naming_it():
    with pytest.raises(ModelConfigError, match=r"base_url 'http://\[::1' is not a valid URL"):
        OpenAICompatibleModel("http://[::1", "m")


def test_base_url_without_a_host_is_refused():
    with pytest.raises(ModelConfigError, match="with a host"):
        OpenAICompatibleModel("http://", "m")


@pytest.mark.parametrize("value", [-1, 0, float("nan"), float("inf"), "x", True, None])
@pytest.mark.parametrize("name", ["timeout", "connect_timeout"])
def test_bad_timeouts_are_refused_at_construction(name, value):
    with pytest.raises(ModelConfigError, match=name):
        OpenAICompatibleModel("http://127.0.0.1:1", "m", **{name: value})


def test_timeout_covers_the_whole_request_against_a_trickling_server():
    with OpenAITestServer() as trickler:
        trickler.inject(Fault.trickle(0.05))  # ~300 bytes: 15 s if each read reset the clock
        model = OpenAICompatibleModel(trickler.url, "m", timeout=0.5, retry=NO_RETRY)
        with pytest.raises(ModelTimeoutError, match="timed out"):
            model.complete("q")
        assert trickler.requests == 1


def test_non_integer_usage_keeps_the_completion():
    with OpenAITestServer() as garbler:
        garbler.inject(Fault.bad_usage())
        reply = OpenAICompatibleModel(garbler.url, "m").complete("q")
    assert reply.text.startswith("answer-")
    assert reply.usage == models.Usage(0, 0)


def test_404_error_names_base_url_and_where_requests_go():
    with OpenAITestServer() as running:
        base_url = running.url + "/api"
        model = OpenAICompatibleModel(base_url, "m", retry=NO_RETRY)
        with pytest.raises(ClientError, match="HTTP 404") as info:
            model.complete("q")
    message = str(info.value)
    assert f"base_url={base_url!r}" in message
    assert "/v1/chat/completions" in message


# --- keys (issue 11, D2) ---------------------------------------------------------------------


def test_key_with_a_trailing_newline_is_stripped_and_works(server, caplog):
    caplog.set_level(logging.DEBUG)
    model = OpenAICompatibleModel(server.url, "m", api_key=KEY + "\n", retry=NO_RETRY)
    assert model.complete("q").text.startswith("answer-")
    assert server.unauthorized == 0
    assert all(KEY not in r.getMessage() + repr(r.__dict__) for r in caplog.records)


def test_wrong_key_with_whitespace_never_appears_in_errors_or_logs(server, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "sk-wrong-" + secrets.token_hex(16)
    model = OpenAICompatibleModel(server.url, "m", api_key=f"  {wrong}\r\n", retry=NO_RETRY)
    with pytest.raises(ClientError) as info:
        model.complete("q")  # the server's 401 quotes the key it received
    said = _everything_said(info.value, caplog)
    assert wrong not in said and wrong[-12:] not in said and "***" in str(info.value)


@pytest.mark.parametrize("bad", ["sk-\u00e9t\u00e9-" + "x" * 20, "sk-in ner-space", "sk-\x00nul"])
def test_key_that_cannot_be_sent_is_refused_without_showing_it(bad):
    with pytest.raises(ModelConfigError, match="api_key has a character at position") as info:
        OpenAICompatibleModel("http://127.0.0.1:1", "m", api_key=bad)
    text = str(info.value) + repr(info.value) + "".join(traceback.format_exception(info.value))
    assert bad not in text and bad[3:] not in text


def test_credentials_in_base_url_become_basic_auth_and_are_never_shown(caplog):
    caplog.set_level(logging.DEBUG)
    secret = "pw-" + secrets.token_hex(12)
    with OpenAITestServer() as running:
        url = running.url.replace("http://", f"http://user:{secret}@")
        model = OpenAICompatibleModel(url, "m", retry=RetryPolicy(1, backoff_seconds=0))
        running.inject(Fault.server_error())
        assert model.complete("q").text.startswith("answer-")
        offline = OpenAICompatibleModel(
            f"http://user:{secret}@127.0.0.1:9", "m", retry=RetryPolicy(1, backoff_seconds=0)
        )
        with pytest.raises(models.ModelConnectionError) as info:
            offline.complete("q")
    assert model.base_url.endswith(":" + url.rsplit(":", 1)[1]) and "user" not in model.base_url
    assert secret not in repr(model)
    assert secret not in _everything_said(info.value, caplog)
    with pytest.raises(ModelConfigError, match="carries credentials") as both:
        OpenAICompatibleModel(f"http://u:{secret}@127.0.0.1:1", "m", api_key="sk-x")
    assert secret not in str(both.value)


# --- signatures (issue 11, small ones) ------------------------------------------------------


@pytest.mark.parametrize(
    "cls",
    [
        models.LLMOperator,
        models.UniformEnsemble,
        models.JudgeSynthesis,
        models.Verifier,
        models.Sequential,
    ],
)
def test_inspect_signature_works_on_the_operator_classes(cls):
    parameters = inspect.signature(cls).parameters
    assert "self" not in parameters and len(parameters) >= 1


def test_inspect_signature_of_instances_is_still_the_call_signature():
    ask = models.LLMOperator(models.SimulatedModel(), "{a} and {b}")
    assert list(inspect.signature(ask).parameters) == ["a", "b"]
    ensemble = models.UniformEnsemble(2, models.SimulatedModel(), "{topic}")
    assert list(inspect.signature(ensemble).parameters) == ["topic"]
