"""OpenAICompatibleModel against the real local server in `ember_xcs.models.testing`."""

from __future__ import annotations

import asyncio
import logging
import re
import socket
import threading

import pytest

from ember_xcs import ModelError
from ember_xcs.models import (
    ClientError,
    MalformedResponseError,
    ModelConfigError,
    ModelConnectionError,
    ModelTimeoutError,
    OpenAICompatibleModel,
    RateLimitError,
    RetryPolicy,
    ServerError,
)
from ember_xcs.models.testing import Fault, OpenAITestServer

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures

FAST_RETRY = RetryPolicy(max_retries=3, backoff_seconds=0.01, max_backoff_seconds=0.02)


@pytest.fixture
def make_model():
    made: list[OpenAICompatibleModel] = []

    def make(base_url: str, name: str = "test-model", **kwargs) -> OpenAICompatibleModel:
        kwargs.setdefault("retry", FAST_RETRY)
        model = OpenAICompatibleModel(base_url, name, **kwargs)
        made.append(model)
        return model

    yield make
    for model in made:
        model.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _retry_delays(caplog) -> list[float]:
    found = []
    for record in caplog.records:
        match = re.search(r"retry \d+/\d+ in ([0-9.]+) s", record.getMessage())
        if match:
            found.append(float(match.group(1)))
    return found


# --- success -----------------------------------------------------------------------------


def test_http_model_returns_text_usage_and_model_name(fresh, make_model):
    model = make_model(fresh.url, "gpt-test")
    response = model.complete("Say hi")
    assert response.text.startswith("answer-")
    assert response.model == "gpt-test"
    assert response.usage.prompt_tokens >= 1 and response.usage.completion_tokens >= 1
    assert fresh.requests == 1
    assert fresh.bodies[0]["messages"] == [{"role": "user", "content": "Say hi"}]
    assert model.retries == 0


def test_http_model_accepts_base_url_with_or_without_v1(fresh, make_model):
    assert make_model(fresh.url).complete("a").text == make_model(fresh.base_url).complete("a").text
    assert make_model(fresh.base_url).endpoint == f"{fresh.url}/v1/chat/completions"


def test_http_model_sends_params_system_prompt_and_seed_plus_sample(fresh, make_model):
    model = make_model(fresh.url, seed=100, system_prompt="Be brief.", params={"temperature": 0.2})
    first = model.complete("q", sample=0).text
    second = model.complete("q", sample=3, max_tokens=5).text
    assert first != second  # the server's answer depends on the seed
    body = fresh.bodies[1]
    assert body["seed"] == 103 and body["temperature"] == 0.2 and body["max_tokens"] == 5
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}


def test_http_model_reads_key_and_base_url_from_the_environment(monkeypatch, make_model):
    with OpenAITestServer(api_key="sk-env-key") as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        model = make_model(None, "env-model")
        assert model.complete("hello").text.startswith("answer-")
        assert server.unauthorized == 0
        model.close()


def test_http_model_needs_a_model_name():
    with pytest.raises(ModelConfigError, match="model name"):
        OpenAICompatibleModel("http://127.0.0.1:1")


def test_http_model_async_calls_share_the_cap(fresh, make_model):
    fresh.latency = 0.05
    model = make_model(fresh.url, max_concurrency=3)

    async def main() -> list[str]:
        async with model:
            responses = await asyncio.gather(*(model.acomplete(f"q{i}") for i in range(9)))
        return [r.text for r in responses]

    texts = asyncio.run(main())
    assert len(set(texts)) == 9
    assert fresh.requests == 9
    assert fresh.max_concurrent == 3


# --- retries -----------------------------------------------------------------------------


def test_http_model_retries_429_and_waits_at_least_retry_after(fresh, make_model, caplog):
    caplog.set_level(logging.INFO, logger="ember_xcs.models")
    fresh.inject(Fault.rate_limited(retry_after=0.25))
    model = make_model(fresh.url)
    assert model.complete("q").text.startswith("answer-")
    assert fresh.requests == 2 and model.retries == 1
    (delay,) = _retry_delays(caplog)
    assert delay >= 0.25  # the backoff alone would have been about 0.01 s


def test_http_model_retries_500_then_succeeds(fresh, make_model):
    fresh.inject(Fault.server_error(500), Fault.server_error(503))
    model = make_model(fresh.url)
    assert model.complete("q").text.startswith("answer-")
    assert fresh.requests == 3 and model.retries == 2


def test_http_model_gives_up_after_max_retries_naming_model_and_endpoint(fresh, make_model):
    fresh.inject(*[Fault.server_error()] * 4)
    model = make_model(fresh.url, "picky-model")
    with pytest.raises(ServerError) as info:
        model.complete("q")
    error = info.value
    assert isinstance(error, ModelError)
    assert fresh.requests == 4 and error.attempts == 4 and error.status == 500
    assert "picky-model" in str(error) and model.endpoint in str(error)
    assert "after 4 attempts" in str(error)


def test_http_model_read_timeout_is_retried(fresh, make_model):
    fresh.inject(Fault.slow(2.0))
    model = make_model(fresh.url, timeout=0.2)
    assert model.complete("q").text.startswith("answer-")
    assert fresh.requests == 2 and model.retries == 1


def test_http_model_persistent_timeouts_raise_model_timeout_error(fresh, make_model):
    fresh.inject(*[Fault.slow(2.0)] * 2)
    model = make_model(fresh.url, timeout=0.15, retry=RetryPolicy(max_retries=1, backoff_seconds=0))
    with pytest.raises(ModelTimeoutError, match="timed out") as info:
        model.complete("q")
    assert isinstance(info.value, TimeoutError)
    assert info.value.attempts == 2 and model.endpoint in str(info.value)


def test_http_model_malformed_json_is_not_retried(fresh, make_model):
    fresh.inject(Fault.malformed())
    model = make_model(fresh.url)
    with pytest.raises(MalformedResponseError, match="malformed response") as info:
        model.complete("q")
    assert fresh.requests == 1 and info.value.attempts == 1
    assert "test-model" in str(info.value)


def test_http_model_connection_refused_is_retried_then_reported(make_model):
    url = f"http://127.0.0.1:{_free_port()}"
    model = make_model(url, "offline-model", retry=RetryPolicy(max_retries=2, backoff_seconds=0))
    with pytest.raises(ModelConnectionError) as info:
        model.complete("q")
    message = str(info.value)
    assert "offline-model" in message and url in message and "after 3 attempts" in message
    assert "server is running" in message
    assert model.retries == 2


def test_http_model_does_not_retry_client_errors(make_model):
    with OpenAITestServer(api_key="sk-right") as server:
        model = make_model(server.url, api_key="sk-wrong")
        with pytest.raises(ClientError, match="HTTP 401") as info:
            model.complete("q")
        assert server.requests == 0 and server.unauthorized == 1
        assert info.value.status == 401 and model.retries == 0
        model.close()


def test_http_model_refuses_a_retry_after_beyond_its_limit(fresh, make_model):
    fresh.inject(Fault.rate_limited(retry_after=120))
    model = make_model(fresh.url)
    with pytest.raises(RateLimitError, match="asked to wait 120.0 s") as info:
        model.complete("q")
    assert info.value.retry_after == 120 and fresh.requests == 1


def test_retry_policy_backoff_doubles_with_jitter_and_caps():
    policy = RetryPolicy(backoff_seconds=1.0, max_backoff_seconds=4.0)
    for attempt, ceiling in [(0, 1.0), (1, 2.0), (2, 4.0), (5, 4.0)]:
        delay = policy.delay(attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert 3.0 <= policy.delay(0, retry_after=3.0) <= 3.3
    with pytest.raises(ModelConfigError):
        RetryPolicy(max_retries=-1)


def test_parse_retry_after_reads_seconds_milliseconds_and_dates():
    from ember_xcs.models._retry import parse_retry_after

    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470) == 10
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


# --- shared limits -----------------------------------------------------------------------


def _call_from_threads(model: OpenAICompatibleModel, count: int) -> None:
    threads = [
        threading.Thread(target=model.complete, args=(f"q{i}",), kwargs={"sample": i})
        for i in range(count)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_concurrency_cap_of_4_is_never_exceeded_server_side(fresh, make_model):
    fresh.latency = 0.05
    model = make_model(fresh.url, max_concurrency=4)
    _call_from_threads(model, 16)
    assert fresh.requests == 16
    assert fresh.max_concurrent == 4


def test_models_with_the_same_endpoint_and_limits_share_one_cap(fresh, make_model):
    fresh.latency = 0.05
    a = make_model(fresh.url, "shared", max_concurrency=4)
    b = make_model(fresh.url, "shared", max_concurrency=4)
    other = make_model(fresh.url, "other", max_concurrency=4)
    assert a.limits is b.limits and a.limits is not other.limits
    threads = [threading.Thread(target=_call_from_threads, args=(m, 8)) for m in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert fresh.requests == 16 and fresh.max_concurrent == 4


def test_without_a_cap_the_server_sees_every_caller_at_once(fresh, make_model):
    fresh.latency = 0.4  # wide enough that all 8 callers overlap on a loaded machine
    model = make_model(fresh.url)
    _call_from_threads(model, 8)
    assert fresh.max_concurrent == 8


def test_test_server_stops_cleanly_with_requests_in_flight():
    before = set(threading.enumerate())
    server = OpenAITestServer(latency=30.0).start()
    model = OpenAICompatibleModel(server.url, "m", timeout=5.0, retry=RetryPolicy(max_retries=0))
    caller = threading.Thread(target=lambda: pytest.raises(ModelError, model.complete, "q"))
    caller.start()
    while server.concurrent == 0:
        threading.Event().wait(0.01)
    server.stop()  # must not wait for the 30 s latency
    caller.join()
    model.close()
    assert set(threading.enumerate()) <= before  # no server or connection thread left
