"""Traceloop's ``opentelemetry-instrumentation-openai`` alone (no traceloop-sdk): one root
span "handle-request" from the script's own tracer holding the shared direct calls (see
_direct.py: chat, chat, embeddings, streamed chat, failed chat)."""

from __future__ import annotations

import openai
from _direct import direct_calls
from _setup import emitter
from opentelemetry.instrumentation.openai import OpenAIInstrumentor


def main() -> None:
    with emitter("openllmetry_openai") as provider:
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        with provider.get_tracer("emitters").start_as_current_span("handle-request"):
            direct_calls(openai.OpenAI(max_retries=0))


if __name__ == "__main__":
    main()
