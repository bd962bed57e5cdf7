"""Direct OpenAI client calls (and plain HTTP GETs) the non-graph scenarios share.

Distinct prompts per step; ``sleep=`` makes "draft" the slow call; the last call fails with
500 and, with the client's retries off, is made once.
"""

from __future__ import annotations

import contextlib

import httpx
import openai
from _setup import tool_url


def direct_calls(client: openai.OpenAI) -> None:
    """Chat gpt-4o-mini (plan), chat gpt-4o (draft), embeddings, a streamed chat with usage
    (summarize), then a chat the server fails (check)."""

    def chat(model: str, text: str) -> None:
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": text}])

    chat("gpt-4o-mini", "plan: list the steps to answer a refund question sleep=50")
    chat("gpt-4o", "draft: write the refund answer for order 1001 sleep=250")
    client.embeddings.create(
        model="text-embedding-3-small", input="refund policy for damaged goods"
    )
    stream = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": "summarize: the answer in one line sleep=20"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    for _ in stream:
        pass
    with contextlib.suppress(openai.InternalServerError):  # the failure is the point
        chat("gpt-4o-mini", "check: the answer against policy fail=500")


def tool_calls() -> None:
    """Two GETs with the ``httpx`` package (what HTTPXClientInstrumentor traces)."""
    httpx.get(tool_url("search", q="refund", sleep="30")).raise_for_status()
    httpx.get(tool_url("weather", city="Paris")).raise_for_status()
