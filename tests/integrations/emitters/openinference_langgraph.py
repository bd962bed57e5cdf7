"""OpenInference for LangChain and OpenAI together (as real users do) on the shared LangGraph
graph (see _graph.py): two runs, then a third whose merge call fails; no span of the
script's own."""

from __future__ import annotations

from _graph import build_graph, invoke_runs
from _setup import emitter
from openinference.instrumentation.langchain import LangChainInstrumentor
from openinference.instrumentation.openai import OpenAIInstrumentor


def main() -> None:
    with emitter("openinference_langgraph") as provider:
        LangChainInstrumentor().instrument(tracer_provider=provider)
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        invoke_runs(build_graph())


if __name__ == "__main__":
    main()
