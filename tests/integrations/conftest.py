"""Fixtures for tests that drive real emitters: the fake OpenAI server and an OTLP sink."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integrations.fake_openai import FakeOpenAI
from tests.integrations.otlp_sink import OtlpSink


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def otlp_sink() -> Iterator[OtlpSink]:
    with OtlpSink() as sink:
        yield sink
