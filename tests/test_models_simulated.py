"""SimulatedModel and CallLimits: determinism, latency, failure injection, counters, caps."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ember_xcs import ModelError
from ember_xcs.models import (
    CallLimits,
    MalformedResponseError,
    Model,
    ModelConfigError,
    ModelResponse,
    ModelTimeoutError,
    RateLimitError,
    ServerError,
    SimulatedModel,
)


def _run_threads(count: int, target) -> list:
    results: list = [None] * count

    def run(i: int) -> None:
        results[i] = target(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_simulated_model_follows_the_model_protocol():
    model = SimulatedModel()
    assert isinstance(model, Model)
    response = model.complete("What is XLA?")
    assert isinstance(response, ModelResponse)
    assert response.model == "simulated"
    assert response.usage.prompt_tokens >= 1 and response.usage.completion_tokens >= 1
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    assert response.latency_seconds >= 0


def test_simulated_answers_depend_only_on_seed_prompt_and_sample():
    a, b = SimulatedModel(seed=1), SimulatedModel(seed=1)
    assert a.complete("q").text == b.complete("q").text
    assert a.complete("q", sample=0).text != a.complete("q", sample=1).text
    assert a.complete("q").text != SimulatedModel(seed=2).complete("q").text
    assert a.complete("q").text != a.complete("other q").text


def test_simulated_responses_can_be_a_list_or_a_function():
    listed = SimulatedModel(responses=["yes", "no"])
    assert {listed.complete("q", sample=i).text for i in range(20)} == {"yes", "no"}
    made = SimulatedModel(responses=lambda prompt, sample: f"{prompt}#{sample}")
    assert made.complete("hi", sample=3).text == "hi#3"


def test_simulated_latency_range_is_deterministic_per_prompt():
    model = SimulatedModel(latency=(0.0, 0.002), seed=5)
    draws = [model._latency("q", s) for s in range(10)]
    assert draws == [model._latency("q", s) for s in range(10)]
    assert all(0.0 <= d <= 0.002 for d in draws)
    assert len(set(draws)) > 1
    assert SimulatedModel(latency=lambda rng: -1.0)._latency("q", 0) == 0.0


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("timeout", ModelTimeoutError),
        ("429", RateLimitError),
        ("5xx", ServerError),
        ("malformed", MalformedResponseError),
    ],
)
def test_simulated_failure_kinds_raise_matching_model_errors(kind, error):
    model = SimulatedModel(name="flaky", failure_rate=1.0, failure_kind=kind)
    with pytest.raises(error) as info:
        model.complete("q")
    assert isinstance(info.value, ModelError)
    assert "flaky" in str(info.value)
    assert model.calls == 1


def test_simulated_failures_are_per_attempt_so_retries_can_succeed():
    model = SimulatedModel(failure_rate=0.5, seed=3)
    outcomes = {}
    for sample in range(40):
        for attempt in range(30):
            try:
                model.complete("q", sample=sample)
            except ServerError:
                continue
            outcomes[sample] = attempt
            break
    assert len(outcomes) == 40  # every sample eventually succeeded
    assert any(a > 0 for a in outcomes.values())  # and some needed retries
    again = SimulatedModel(failure_rate=0.5, seed=3)
    replay = {}
    for sample in range(40):
        attempt = 0
        while True:
            try:
                again.complete("q", sample=sample)
                break
            except ServerError:
                attempt += 1
        replay[sample] = attempt
    assert replay == outcomes  # the same failures, deterministically


def test_simulated_model_rejects_bad_configuration():
    with pytest.raises(ModelConfigError, match="failure_kind"):
        SimulatedModel(failure_kind="explode")
    with pytest.raises(ModelConfigError, match="failure_rate"):
        SimulatedModel(failure_rate=2.0)
    with pytest.raises(ModelConfigError, match="prompt must be a str"):
        SimulatedModel().complete(42)


def test_a_call_refused_before_it_ran_is_not_counted():
    model = SimulatedModel()
    with pytest.raises(ModelConfigError, match="prompt must be a str"):
        model.complete(42)
    with pytest.raises(ModelConfigError, match="prompt must be a str"):
        asyncio.run(model.acomplete(None))
    assert model.calls == 0 and model.call_log == [] and model.in_flight == 0
    model.complete("ok")
    assert model.calls == 1


def test_simulated_model_counts_calls_and_logs_each_once():
    model = SimulatedModel()
    _run_threads(12, lambda i: model.complete(f"q{i}", sample=i))
    assert model.calls == 12
    assert sorted(model.call_log) == sorted((f"q{i}", i) for i in range(12))
    model.reset_counters()
    assert model.calls == 0 and model.call_log == [] and model.max_in_flight == 0


def test_simulated_max_in_flight_reaches_the_number_of_concurrent_callers():
    model = SimulatedModel(latency=0.2)
    _run_threads(6, lambda i: model.complete("q", sample=i))
    assert model.max_in_flight == 6
    assert model.in_flight == 0


def test_simulated_concurrency_cap_bounds_calls_in_flight():
    model = SimulatedModel(latency=0.05, max_concurrency=3)
    texts = _run_threads(9, lambda i: model.complete("q", sample=i).text)
    assert model.max_in_flight == 3
    assert model.calls == 9
    assert texts == [SimulatedModel().complete("q", sample=i).text for i in range(9)]


def test_simulated_acomplete_matches_complete_and_respects_the_cap():
    model = SimulatedModel(latency=0.05, max_concurrency=2)

    async def main() -> list[str]:
        responses = await asyncio.gather(*(model.acomplete("q", sample=i) for i in range(6)))
        return [r.text for r in responses]

    texts = asyncio.run(main())
    assert texts == [SimulatedModel().complete("q", sample=i).text for i in range(6)]
    assert model.max_in_flight == 2


def test_call_limits_share_one_cap_between_threads_and_tasks():
    limits = CallLimits(max_concurrency=2)
    model = SimulatedModel(latency=0.05)
    model.limits = limits

    async def tasks() -> None:
        await asyncio.gather(*(model.acomplete("a", sample=i) for i in range(4)))

    thread = threading.Thread(target=lambda: asyncio.run(tasks()))
    thread.start()
    _run_threads(4, lambda i: model.complete("t", sample=i))
    thread.join()
    assert limits.calls == 8
    assert limits.max_in_flight == 2


def test_cancelled_waiter_gives_its_slot_back():
    limits = CallLimits(max_concurrency=1)

    async def main() -> int:
        async with limits.aslot():
            waiter = asyncio.create_task(_hold(limits))
            await asyncio.sleep(0.01)
            waiter.cancel()
        async with limits.aslot():  # would hang if the cancelled waiter kept the slot
            return limits.in_flight

    assert asyncio.run(main()) == 1
    assert limits.in_flight == 0


async def _hold(limits: CallLimits) -> None:
    async with limits.aslot():
        pass


def test_requests_per_second_spaces_reserved_starts():
    limits = CallLimits(requests_per_second=10)
    delays = [limits._reserve_start() for _ in range(4)]
    # reservations made microseconds apart are scheduled 0.1 s apart
    for i, delay in enumerate(delays):
        assert delay == pytest.approx(0.1 * i, abs=0.02)


def test_call_limits_reject_bad_values():
    with pytest.raises(ModelConfigError):
        CallLimits(max_concurrency=0)
    with pytest.raises(ModelConfigError):
        CallLimits(requests_per_second=0)
