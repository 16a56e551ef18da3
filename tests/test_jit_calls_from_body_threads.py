"""Calls made from threads a jitted body starts (with its context) while a call of the
same run runs on the body's thread.

A call made while nothing else is in flight runs on the body's thread when the body needs
its value ("A lone call", `scheduling/_engine.py`). It used to run there holding the run's
lock, so a thread the body had handed its context to could not even add its call until
the first one returned: two calls that need each other (a barrier, a queue, a handshake)
deadlocked, where plain Python runs them both. Overlap is shown with a barrier, never
with timing.
"""

from __future__ import annotations

import contextvars
import threading
from typing import Any

import pytest

import ember_xcs as xcs
from ember_xcs._jit._serial import LEARN
from ember_xcs.scheduling import _engine


@pytest.fixture(autouse=True)
def no_starter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A lone call waits for the body however long it takes: the first call surely runs
    on the body's thread, whatever the machine's speed."""
    monkeypatch.setattr(_engine, "watch", lambda run, index: None)


class Meeting:
    """`op(x)` waits at a two-party barrier; `started` is set once a call is waiting."""

    def __init__(self) -> None:
        self.barrier = threading.Barrier(2, timeout=10)
        self.started = threading.Event()
        self.threads: list[str] = []
        self.op = xcs.op(self._meet, name="meet")

    def _meet(self, value: str) -> str:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        self.barrier.wait()
        return value.upper()


def _body(meeting: Meeting) -> Any:
    def body(text: str) -> list[str]:
        text = text.strip()  # stops a trace before any thread starts: `auto` runs dynamically
        out: list[Any] = []

        def second() -> None:
            meeting.started.wait(10)  # the first call is running (on the body's thread)
            out.append(meeting.op(text + "-b"))

        helper = threading.Thread(target=contextvars.copy_context().run, args=(second,))
        helper.start()
        first = meeting.op(text + "-a")  # made alone: held until the body needs it
        value = first.lower()  # runs the first call here; it waits for the second
        helper.join()
        return [value, out[0]]

    return body


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_a_call_from_a_body_thread_runs_while_a_lone_call_runs_on_the_body_thread(
    mode: str,
) -> None:
    plain = Meeting()
    assert _body(plain)("x") == ["x-a", "X-B"]
    meeting = Meeting()
    jitted = xcs.jit(_body(meeting), mode=mode)
    assert jitted("x") == ["x-a", "X-B"]
    assert meeting.threads[0] == threading.current_thread().name  # the lone call
    assert meeting.threads[1] != meeting.threads[0]  # on a worker, at the same time
    status = xcs.engine_status()
    assert (status.runs, status.running, status.queued) == (0, 0, 0)


@pytest.mark.parametrize("mode", ["auto", "dynamic"])
def test_a_call_from_a_body_thread_runs_while_a_chained_call_runs_on_the_body_thread(
    mode: str,
) -> None:
    """The body needs a call that depends on the lone one: the engine loop runs the lone
    call on the body's thread (`pump`), not `_run_alone`."""
    meeting = Meeting()

    def body(text: str) -> list[str]:
        text = text.strip()
        out: list[Any] = []

        def second() -> None:
            meeting.started.wait(10)
            out.append(meeting.op(text + "-b"))

        helper = threading.Thread(target=contextvars.copy_context().run, args=(second,))
        helper.start()
        value = shout(meeting.op(text)).lower()  # `meet` runs here, inside the loop
        helper.join()
        return [value, out[0]]

    assert xcs.jit(body, mode=mode)("x") == ["x", "X-B"]
    assert meeting.threads[0] == threading.current_thread().name
    assert meeting.threads[1] != meeting.threads[0]


def test_a_call_from_a_body_thread_escalates_a_serial_run_while_its_call_runs() -> None:
    """A learned serial run ran each call holding its lock: the helper's call waited for
    the body's call, which waited for it at the barrier."""
    meeting = Meeting()

    def body(text: str) -> list[str]:
        text = text.strip()
        out: list[Any] = []
        helper = None
        if text.startswith("meet"):  # a plain string: the signature stays the same

            def second() -> None:
                meeting.started.wait(10)
                out.append(meeting.op(text + "-b"))

            helper = threading.Thread(target=contextvars.copy_context().run, args=(second,))
            helper.start()
        value = meeting.op(text).lower() if helper is not None else shout(text).lower()
        if helper is None:
            return [value]
        helper.join()
        return [value, out[0]]

    jitted = xcs.jit(body)
    for i in range(LEARN):
        assert jitted(f"warm{i}") == [f"warm{i}"]
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    assert jitted("meet") == ["meet", "MEET-B"]
    text = xcs.explain_jit_selection(jitted)
    assert "was made while call 'meet' was running: the two could overlap" in text
    assert meeting.threads[0] == threading.current_thread().name
    assert meeting.threads[1] != meeting.threads[0]
    status = xcs.engine_status()
    assert (status.runs, status.running, status.queued) == (0, 0, 0)


@xcs.op
def shout(text: str) -> str:
    return text.upper()


def test_a_keyboard_interrupt_in_a_serial_run_call_still_propagates() -> None:
    """The serial call path catches everything to hand it on; an interrupt is raised."""

    @xcs.op
    def step(text: str) -> str:
        if text == "stop":
            raise KeyboardInterrupt
        return text.upper()

    def body(text: str) -> str:
        return step(step(text).lower())

    jitted = xcs.jit(body)
    for i in range(LEARN):
        jitted(f"w{i}")
    assert "serial: calls run at once" in xcs.explain_jit_selection(jitted)
    with pytest.raises(KeyboardInterrupt):
        jitted("stop")
    assert jitted("again") == "AGAIN"
    status = xcs.engine_status()
    assert (status.runs, status.running, status.queued) == (0, 0, 0)
