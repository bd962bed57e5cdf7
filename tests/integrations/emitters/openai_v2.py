"""The official ``opentelemetry-instrumentation-openai-v2`` (+ httpx instrumentation).

One root span "handle-request" from the script's own tracer holding the shared direct calls
(see _direct.py: chat, chat, embeddings, streamed chat, failed chat) and two httpx GETs.

``openai`` 3.x sends its requests with ``httpx2``, which HTTPXClientInstrumentor does not
trace; ``EMITTER_HTTPX2=1`` also instruments httpx2 (as ``opentelemetry-instrument`` would),
so every model call gets an HTTP client child span. Content is not captured (the default).
"""

from __future__ import annotations

import os

import openai
from _direct import direct_calls, tool_calls
from _setup import emitter
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor


def main() -> None:
    with emitter("openai_v2") as provider:
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        if os.environ.get("EMITTER_HTTPX2") == "1":
            HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)
        with provider.get_tracer("emitters").start_as_current_span("handle-request"):
            direct_calls(openai.OpenAI(max_retries=0))
            tool_calls()


if __name__ == "__main__":
    main()
