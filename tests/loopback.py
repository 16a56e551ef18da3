"""Fixtures for tests against the loopback OpenAI-compatible server.

`server` is one `OpenAITestServer` per test module; `fresh` is that server with its
counters, queued faults and latency reset before and after the test. Import both names
into a test module to use them.
"""

from __future__ import annotations

import pytest

from ember_xcs.models.testing import OpenAITestServer


@pytest.fixture(scope="module")
def server():
    with OpenAITestServer() as running:
        yield running


@pytest.fixture
def fresh(server):
    server.reset()
    server.latency = 0.0
    yield server
    server.reset()
    server.latency = 0.0
