"""`ExecutionOptions(progress=...)`: a tqdm bar for long runs on a terminal, nothing else.

A terminal is a `StringIO` whose `isatty()` says True, put in place of `sys.stderr`
with `redirect_stderr`; what the bar drew is then plain text to check. `progress=0` shows the bar at once (no delay),
so no test depends on how long anything takes.
"""

from __future__ import annotations

import asyncio
import io
import re
import sys
import threading
import time
from contextlib import redirect_stderr

import pytest

import ember_xcs as xcs
from ember_xcs._options import node_hook_calls
from ember_xcs.scheduling import ProgressHooks
from ember_xcs.scheduling._progress import REFRESH_SECONDS


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture
def terminal():
    """A fake terminal; tests put it in place of `sys.stderr` with `redirect_stderr` in
    their body, because pytest re-installs its own capture of `sys.stderr` between a
    fixture's setup and the test call, undoing a swap made here."""
    return Terminal()


@xcs.op
def noop(*values):
    return 1


def wide(count, operator=noop):
    graph = xcs.Graph()
    for i in range(count):
        graph.add_node(operator, node_id=f"n{i}")
    return graph


def final_count(screen: io.StringIO) -> str:
    """The last `done/total` the bar drew."""
    counts = re.findall(r"(\d+/\d+)", screen.getvalue())
    assert counts, f"no bar was drawn: {screen.getvalue()!r}"
    return counts[-1]


@pytest.mark.parametrize("scheduler", ["parallel", "sequential"])
def test_bar_counts_every_node_of_a_graph_run_on_a_terminal(terminal, scheduler):
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(12), options=xcs.ExecutionOptions(progress=0, scheduler=scheduler))
    assert final_count(terminal) == "12/12"
    assert f"ember_xcs ({scheduler})" in terminal.getvalue()


def test_no_bar_when_stderr_is_not_a_terminal():
    log = io.StringIO()  # a file or a pipe: isatty() is False
    with redirect_stderr(log):
        xcs.execute_graph(wide(12), options=xcs.ExecutionOptions(progress=0))
    assert log.getvalue() == ""


def test_no_bar_for_a_run_shorter_than_the_delay(terminal):
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(12), options=xcs.ExecutionOptions(progress=3600))
    assert terminal.getvalue() == ""


def test_no_bar_when_progress_is_off(terminal):
    options = xcs.ExecutionOptions()
    assert options.progress is False and options.hooks == ()
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(12), options=options)
    assert terminal.getvalue() == ""


@pytest.mark.parametrize("scheduler", ["parallel", "sequential"])
def test_nested_runs_count_toward_the_outer_bar_only(terminal, scheduler):
    inner = wide(4)

    @xcs.op
    def outer(*values):
        return len(xcs.execute_graph(inner))  # inherits the options: progress is on here too

    options = xcs.ExecutionOptions(progress=0, scheduler=scheduler)
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(3, outer), options=options)
    assert final_count(terminal) == "3/3"
    assert "/4" not in terminal.getvalue()


class LoggingBar(ProgressHooks):
    """Overrides a node event: the engine then calls its keyword methods, for every run."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.ended = []

    def on_node_end(self, *, node_id, name, seconds):
        self.ended.append(node_id)
        super().on_node_end(node_id=node_id, name=name, seconds=seconds)


@pytest.mark.parametrize("scheduler", ["parallel", "sequential"])
def test_a_subclass_overriding_a_node_event_counts_the_same(scheduler):
    screen = Terminal()
    bar = LoggingBar(0, file=screen)

    @xcs.op
    def outer(*values):
        return len(xcs.execute_graph(wide(4)))

    xcs.execute_graph(wide(3, outer), options=xcs.ExecutionOptions(hooks=bar, scheduler=scheduler))
    assert final_count(screen) == "3/3"
    assert len(bar.ended) == 3 + 3 * 4  # it saw the nested runs' nodes too


def test_runs_nested_in_async_nodes_and_jitted_calls_count_toward_the_outer_bar(terminal):
    @xcs.jit
    def pair(x):
        return [noop(x), noop(x, 1)]

    @xcs.op
    async def outer(*values):
        await asyncio.sleep(0)
        with xcs.execution_options(max_workers=4):  # other options, another hook: still nested
            return pair(1) + [len(xcs.execute_graph(wide(4)))]

    with redirect_stderr(terminal), xcs.execution_options(progress=0):
        xcs.execute_graph(wide(3, outer))
    assert final_count(terminal) == "3/3"
    assert not re.search(r"\d+/[24]\b", terminal.getvalue())


def test_a_run_inside_a_node_of_a_run_without_a_bar_draws_its_own(terminal):
    @xcs.op
    def outer(*values):
        return len(xcs.execute_graph(wide(4), options=xcs.ExecutionOptions(progress=0)))

    with redirect_stderr(terminal):
        xcs.execute_graph(wide(1, outer), options=xcs.ExecutionOptions())
    assert final_count(terminal) == "4/4"


def test_a_run_gets_no_node_calls_unless_a_bar_can_be_drawn(terminal):
    options = xcs.ExecutionOptions(progress=0)
    with redirect_stderr(io.StringIO()):  # a log: no bar, so nodes pay nothing
        assert node_hook_calls(options) == ((), (), (), False, None, ())
    with redirect_stderr(terminal):
        starts, ends, failures, timed, log, ticks = node_hook_calls(options)
    assert starts == ends == failures == () and len(ticks) == 1  # one tick as each node finishes
    assert not timed and log is None  # which reads no clock
    assert not hasattr(ticks[0], "__code__")  # a C call: no Python frame per node


def test_the_bar_is_redrawn_at_most_every_refresh_interval_not_per_node(terminal, monkeypatch):
    import tqdm

    updates = []
    update = tqdm.tqdm.update
    monkeypatch.setattr(tqdm.tqdm, "update", lambda bar, n=1: updates.append(n) or update(bar, n))
    start = time.perf_counter()
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(500), options=xcs.ExecutionOptions(progress=0))
    elapsed = time.perf_counter() - start
    assert final_count(terminal) == "500/500" and sum(updates) == 500
    # one redraw per interval at most (however slow the machine), and one when it closes
    assert len(updates) <= 2 + elapsed / REFRESH_SECONDS


def test_vmap_batch_shows_one_step_per_item(terminal):
    with redirect_stderr(terminal), xcs.execution_options(progress=0):
        assert xcs.vmap(noop)(list(range(20))) == [1] * 20
    assert final_count(terminal) == "20/20"


def test_jitted_call_shows_its_plan_nodes(terminal):
    @xcs.jit
    def five(x):
        return [noop(x, i) for i in range(5)]

    with redirect_stderr(terminal), xcs.execution_options(progress=0):
        five(1)  # traces
        terminal.seek(0)
        terminal.truncate()
        assert five(2) == [1] * 5  # replays the plan
    assert final_count(terminal) == "5/5"


def test_dynamic_run_of_unknown_size_ends_with_the_count_it_reached(terminal):
    @xcs.jit(mode="dynamic")
    def loop(n):
        return [noop(i) for i in range(n)]

    with redirect_stderr(terminal), xcs.execution_options(progress=0):
        assert loop(7) == [1] * 7
    assert final_count(terminal) == "7/7"


def test_retried_node_counts_once_and_a_failed_run_closes_its_bar(terminal):
    attempts = []

    @xcs.op
    def flaky(*values):
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("try again")
        return 1

    options = xcs.ExecutionOptions(progress=0, retries=1, retry_backoff=0, scheduler="sequential")
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(3, flaky), options=options)
    assert final_count(terminal) == "3/3"

    @xcs.op
    def broken(*values):
        raise ValueError("no")

    with redirect_stderr(terminal), pytest.raises(xcs.NodeExecutionError):
        xcs.execute_graph(wide(2, broken), options=options.replace(retries=0))
    terminal.seek(0)
    terminal.truncate()
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(4), options=options)  # this thread is not left "inside a node"
    assert final_count(terminal) == "4/4"


def test_bar_leaves_no_thread_behind(terminal):
    before = {t.name for t in threading.enumerate()}
    with redirect_stderr(terminal):
        xcs.execute_graph(wide(5), options=xcs.ExecutionOptions(progress=0, scheduler="sequential"))
    assert final_count(terminal) == "5/5"
    for thread in threading.enumerate():  # the drawer ends by itself once no bar is open
        if thread.name == "ember-xcs-progress":
            thread.join(timeout=30)
    assert {t.name for t in threading.enumerate()} - before == set()


def test_an_open_bar_is_redrawn_while_no_node_finishes(terminal):
    """The drawer thread brings the bar up to date: a node that waits until the bar shows
    the first node done sees it while it runs (the run's own thread draws only at the end)."""

    @xcs.op
    def wait_for_redraw(*values):
        for _ in range(3000):  # up to 30 s
            if "1/2" in terminal.getvalue():
                return True
            time.sleep(0.01)
        return False

    graph = xcs.Graph()
    graph.add_node(noop, node_id="first")
    graph.add_node(wait_for_redraw, node_id="second")
    graph.connect("first", "second")
    options = xcs.ExecutionOptions(progress=0, scheduler="sequential")
    with redirect_stderr(terminal):
        assert xcs.execute_graph(graph, options=options)["second"] is True
    assert final_count(terminal) == "2/2"


def test_progress_hook_can_draw_to_a_chosen_stream():
    screen = Terminal()
    xcs.execute_graph(wide(6), options=xcs.ExecutionOptions(hooks=ProgressHooks(0, file=screen)))
    assert final_count(screen) == "6/6"


# --- the option --------------------------------------------------------------------------


def test_progress_option_adds_one_hook_and_replace_swaps_it():
    timeline = xcs.Timeline()
    on = xcs.ExecutionOptions(progress=True, hooks=(timeline,))
    assert on.hooks[0] is timeline and isinstance(on.hooks[1], ProgressHooks)
    assert on.hooks[1].delay == 2.0
    assert len(on.replace(max_workers=2).hooks) == 2  # not stacked on every replace
    assert on.replace(progress=5).hooks[1].delay == 5.0
    assert on.replace(progress=False).hooks == (timeline,)
    assert on.replace(max_workers=2) == on.replace(max_workers=2)  # equal settings, equal options
    with xcs.execution_options(progress=True):
        with xcs.execution_options(max_workers=3) as inner:
            assert sum(isinstance(h, ProgressHooks) for h in inner.hooks) == 1


def test_a_progress_hook_passed_by_hand_is_kept_when_the_option_changes():
    mine = ProgressHooks(1.0)
    options = xcs.ExecutionOptions(hooks=(mine,), progress=True)
    assert options.replace(progress=False).hooks == (mine,)


@pytest.mark.parametrize("bad", ["yes", -1, None, float("nan"), [True]])
def test_bad_progress_values_are_rejected(bad):
    with pytest.raises(xcs.OptionsError, match=r"^progress must be True, False or a delay in"):
        xcs.ExecutionOptions(progress=bad)


def test_progress_without_tqdm_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # what `import tqdm` sees when it is missing
    with pytest.raises(xcs.OptionsError, match=r"pip install 'ember_xcs\[progress\]'"):
        xcs.ExecutionOptions(progress=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"delay": -1}, r"^ProgressHooks: delay must be seconds >= 0, got -1$"),
        ({"delay": "2"}, r"^ProgressHooks: delay must be seconds >= 0, got '2'$"),
        ({"file": "out.txt"}, r"^ProgressHooks: file must be a writable stream such as sys.stderr"),
    ],
)
def test_progress_hooks_check_their_arguments(kwargs, message):
    with pytest.raises(xcs.OptionsError, match=message):
        ProgressHooks(**kwargs)
