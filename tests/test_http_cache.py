"""The response cache: off by default, keyed on everything asked (sample index included),
on disk with SQLite, shared by threads and processes, counted, and handing out copies."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import threading

import pytest

import ember_xcs as xcs
from ember_xcs import models
from ember_xcs.cli import main as cli_main
from ember_xcs.models import OpenAICompatibleModel, ResponseCache, RetryPolicy
from ember_xcs.models.testing import Fault, OpenAITestServer

pytest_plugins = ("loopback",)  # the `server` and `fresh` fixtures


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_XCS_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_cache_is_off_by_default(fresh, cache_dir):
    model = OpenAICompatibleModel(fresh.url, "m")
    model.complete("q")
    model.complete("q")
    assert model.cache is None and fresh.requests == 2
    assert not (cache_dir / "responses.sqlite").exists()


def test_cache_true_stores_in_the_default_file_and_counts_hits_and_misses(fresh, cache_dir):
    model = OpenAICompatibleModel(fresh.url, "m", cache=True)
    first, second = model.complete("q"), model.complete("q")
    assert fresh.requests == 1
    assert model.cache.path == cache_dir / "responses.sqlite"
    assert (first.cached, second.cached) == (False, True) and first.text == second.text
    stats = model.stats()
    assert (stats["cache_hits"], stats["cache_misses"], stats["calls"]) == (1, 1, 1)


def test_cache_survives_a_restart(fresh, tmp_path):
    path = tmp_path / "c.sqlite"
    text = OpenAICompatibleModel(fresh.url, "m", cache=ResponseCache(path)).complete("q").text
    reopened = OpenAICompatibleModel(fresh.url, "m", cache=ResponseCache(path))  # a new file handle
    assert reopened.complete("q").text == text and fresh.requests == 1


def test_cached_ensemble_keeps_its_samples_distinct(fresh, cache_dir):
    model = OpenAICompatibleModel(fresh.url, "m", seed=7, cache=True)
    ensemble = xcs.jit(models.UniformEnsemble(5, model))
    first = ensemble("same prompt")
    again = ensemble("same prompt")
    assert len(set(first)) == 5 and again == first
    assert fresh.requests == 5  # the second run came from the cache


def test_sample_index_alone_separates_keys_without_a_seed(fresh, cache_dir):
    model = OpenAICompatibleModel(fresh.url, "m", cache=True)
    model.complete("q", sample=0)
    model.complete("q", sample=1)
    assert fresh.requests == 2


@pytest.mark.parametrize(
    "change",
    [{"temperature": 0.9}, {"n": 2}, {"response_format": {"type": "json_object"}}, {"seed": 3}],
)
def test_every_sampling_parameter_is_part_of_the_key(fresh, cache_dir, change):
    model = OpenAICompatibleModel(fresh.url, "m", cache=True)
    model.complete("q")
    model.complete("q", **change)
    assert fresh.requests == 2


def test_model_name_and_messages_are_part_of_the_key(fresh, cache_dir):
    OpenAICompatibleModel(fresh.url, "a", cache=True).complete("q")
    OpenAICompatibleModel(fresh.url, "b", cache=True).complete("q")
    OpenAICompatibleModel(fresh.url, "a", cache=True, system_prompt="terse").complete("q")
    assert fresh.requests == 3


def test_cache_hits_are_copies_the_caller_cannot_change(fresh, cache_dir):
    model = OpenAICompatibleModel(fresh.url, "m", cache=True)
    model.complete("q")
    hit = model.complete("q")
    object.__setattr__(hit, "text", "tampered")  # past the frozen dataclass, on purpose
    again = model.complete("q")
    assert again.text != "tampered" and again is not hit
    assert dataclasses.replace(again, latency_seconds=0) == dataclasses.replace(
        model.complete("q"), latency_seconds=0
    )


def test_async_and_streamed_calls_use_the_cache_too(fresh, cache_dir):
    import asyncio

    model = OpenAICompatibleModel(fresh.url, "m", cache=True)
    text = model.complete("q").text
    assert asyncio.run(model.acomplete("q")).text == text
    streamed = OpenAICompatibleModel(fresh.url, "m", cache=True)
    assert "".join(streamed.stream("s")) == "".join(streamed.stream("s"))
    assert fresh.requests == 2


def test_threads_share_one_cache_file_safely(tmp_path):
    cache = ResponseCache(tmp_path / "c.sqlite")
    reply = models.ModelResponse("text", "m")
    errors = []

    def work(offset: int) -> None:
        try:
            for i in range(50):
                key = ResponseCache.key({"i": offset + i}, 0)
                cache.put(key, reply)
                assert cache.get(key).text == "text"
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(k * 1000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(cache) == 200


_WRITER = """
import sys
from ember_xcs.models import ModelResponse, ResponseCache
cache = ResponseCache(sys.argv[1])
tag = sys.argv[2]
for i in range(100):
    cache.put(ResponseCache.key({"writer": tag, "i": i}, 0), ModelResponse(f"{tag}-{i}", "m"))
    assert cache.get(ResponseCache.key({"writer": tag, "i": i}, 0)).text == f"{tag}-{i}"
print("done")
"""


def test_two_processes_write_one_cache_file_at_once(tmp_path):
    path = tmp_path / "shared.sqlite"
    ResponseCache(path).close()  # create it (and its WAL mode) once
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path), tag], stdout=subprocess.PIPE, text=True
        )
        for tag in ("a", "b")
    ]
    outputs = [w.communicate(timeout=120)[0] for w in writers]
    assert [w.returncode for w in writers] == [0, 0] and outputs == ["done\n", "done\n"]
    cache = ResponseCache(path)
    assert len(cache) == 200
    assert cache.get(ResponseCache.key({"writer": "b", "i": 99}, 0)).text == "b-99"


def test_cache_hit_does_not_touch_the_network(cache_dir):
    with OpenAITestServer() as own:
        model = OpenAICompatibleModel(own.url, "m", cache=True, retry=RetryPolicy(max_retries=0))
        model.complete("q")
    # the server is gone: a miss would raise ModelConnectionError, a hit answers
    assert model.complete("q").cached
    with pytest.raises(models.ModelConnectionError):
        model.complete("not cached")


def test_cache_command_shows_size_and_clears(tmp_path, capsys):
    path = tmp_path / "c.sqlite"
    cache = ResponseCache(path)
    cache.put(ResponseCache.key({"q": 1}, 0), models.ModelResponse("x", "m"))
    assert cli_main(["cache", "--path", str(path)]) == 0
    assert "1 cached response(s)" in capsys.readouterr().out
    assert cli_main(["cache", "clear", "--path", str(path)]) == 0
    assert "cleared 1" in capsys.readouterr().out
    assert len(ResponseCache(path)) == 0


def test_cache_option_rejects_other_values():
    with pytest.raises(models.ModelConfigError, match="cache must be True"):
        OpenAICompatibleModel("http://127.0.0.1:1", "m", cache=42)


def test_track_usage_counts_calls_misses_hits_and_retries(fresh, cache_dir):
    fresh.inject(Fault.server_error())
    model = OpenAICompatibleModel(fresh.url, "m", cache=True, retry=RetryPolicy(1, 0.0))
    with models.track_usage() as usage:
        model.complete("q")  # a miss, a 500, a retry, the answer
        model.complete("q")  # a hit
    assert (usage.calls, usage.cache_misses, usage.cache_hits, usage.retries) == (1, 1, 1, 1)
    assert usage.prompt_tokens == model.stats()["prompt_tokens"] > 0


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_identical_calls_in_flight_together_make_one_request_as_plainly(fresh, tmp_path, mode):
    fresh.latency = 0.2  # the three calls are on their way together under jit
    model = OpenAICompatibleModel(fresh.url, "m", seed=0, cache=ResponseCache(tmp_path / "r"))

    def body(question):
        return [model.complete(question).text for _ in range(3)]

    answers = xcs.jit(body, mode=mode)("q")
    assert len(set(answers)) == 1 and fresh.requests == 1
    stats = model.stats()
    assert (stats["calls"], stats["cache_misses"], stats["cache_hits"]) == (1, 1, 2)


def test_a_call_waiting_on_a_failed_identical_request_makes_its_own(fresh, tmp_path):
    fresh.latency = 0.1
    fresh.inject(Fault.server_error(500))
    model = OpenAICompatibleModel(
        fresh.url, "m", cache=ResponseCache(tmp_path / "r"), retry=RetryPolicy(max_retries=0)
    )
    outcomes: list[object] = [None, None]

    def ask(i):
        try:
            outcomes[i] = model.complete("q").text
        except models.ServerError as error:
            outcomes[i] = error

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(isinstance(o, models.ServerError) for o in outcomes) == 1
    assert sum(isinstance(o, str) for o in outcomes) == 1
    assert fresh.requests == 2
