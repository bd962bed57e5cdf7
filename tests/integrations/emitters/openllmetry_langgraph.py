"""Traceloop's OpenLLMetry instrumentations for LangChain and OpenAI (their Instrumentor
classes, no traceloop-sdk) on the shared LangGraph graph (see _graph.py): two runs, then a
third whose merge call fails."""

from __future__ import annotations

from _graph import build_graph, invoke_runs
from _setup import emitter
from opentelemetry.instrumentation.langchain import LangchainInstrumentor
from opentelemetry.instrumentation.openai import OpenAIInstrumentor


def main() -> None:
    with emitter("openllmetry_langgraph") as provider:
        LangchainInstrumentor().instrument(tracer_provider=provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        invoke_runs(build_graph())


if __name__ == "__main__":
    main()
