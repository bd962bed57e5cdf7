"""OpenInference for OpenAI and LangChain together, outside any graph.

One root span "handle-request" from the script's own tracer holding the shared direct OpenAI
client calls (see _direct.py; openinference-instrumentation-openai) and then an LCEL chain
prompt | ChatOpenAI | StrOutputParser (openinference-instrumentation-langchain).
"""

from __future__ import annotations

import openai
from _direct import direct_calls
from _setup import emitter
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_openai import ChatOpenAI
from openinference.instrumentation.langchain import LangChainInstrumentor
from openinference.instrumentation.openai import OpenAIInstrumentor


def work(client: openai.OpenAI) -> None:
    direct_calls(client)
    prompt = ChatPromptTemplate.from_messages(
        [("system", "You answer support tickets."), ("user", "answer: {ticket} sleep=60")]
    )
    chain = prompt | ChatOpenAI(model="gpt-4o-mini", max_retries=0) | StrOutputParser()
    chain.invoke({"ticket": "refund for order 1001"})


def main() -> None:
    with emitter("openinference_chain") as provider:
        OpenAIInstrumentor().instrument(tracer_provider=provider)
        LangChainInstrumentor().instrument(tracer_provider=provider)
        with provider.get_tracer("emitters").start_as_current_span("handle-request"):
            work(openai.OpenAI(max_retries=0))


if __name__ == "__main__":
    main()
