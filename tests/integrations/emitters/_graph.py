"""The LangGraph graph the LangGraph scenarios share, and how they invoke it.

    START -> lookup (a LangChain @tool) -> plan -> draft_a (fast) + draft_b (slow, gpt-4o)
          -> merge -> END

Each node makes one ChatOpenAI call (lookup: one GET to the fake tool endpoint) with its own
prompt; ``sleep=`` directives make draft_b the slow branch, so the critical path is known:
lookup, plan, draft_b, merge.
"""

from __future__ import annotations

import operator
from typing import Annotated, Any, TypedDict

import httpx
from _setup import tool_url
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, StateGraph

# ms the fake server waits before answering each node's call.
SLEEP_MS = {"lookup": 20, "plan": 40, "draft_a": 60, "draft_b": 400, "merge": 30}


class State(TypedDict, total=False):
    question: str
    fail: bool  # the merge call answers 500: a failed run
    facts: str
    plan: str
    drafts: Annotated[list[str], operator.add]
    answer: str


@tool
def lookup_policy(topic: str) -> str:
    """Look up the support policy on a topic."""
    response = httpx.get(tool_url("policy", topic=topic, sleep=str(SLEEP_MS["lookup"])))
    response.raise_for_status()
    return str(response.json()["result"])


def build_graph() -> Any:
    """The compiled graph; every model call is made with retries off."""
    mini = ChatOpenAI(model="gpt-4o-mini", max_retries=0)
    big = ChatOpenAI(model="gpt-4o", max_retries=0)

    def ask(llm: ChatOpenAI, step: str, text: str) -> str:
        return str(llm.invoke(f"{step}: {text} sleep={SLEEP_MS[step]}").content)

    def lookup(state: State) -> State:
        return {"facts": lookup_policy.invoke({"topic": state["question"].split()[0]})}

    def plan(state: State) -> State:
        return {"plan": ask(mini, "plan", f"outline an answer to {state['question']}")}

    def draft_a(state: State) -> State:
        return {"drafts": [ask(mini, "draft_a", f"a short reply following {state['plan']}")]}

    def draft_b(state: State) -> State:
        return {"drafts": [ask(big, "draft_b", f"a thorough reply using {state['facts']}")]}

    def merge(state: State) -> State:
        fail = " fail=500" if state.get("fail") else ""
        return {"answer": ask(mini, "merge", f"combine {len(state['drafts'])} drafts{fail}")}

    graph = StateGraph(State)
    for name, node in [
        ("lookup", lookup),
        ("plan", plan),
        ("draft_a", draft_a),
        ("draft_b", draft_b),
        ("merge", merge),
    ]:
        graph.add_node(name, node)
    graph.add_edge(START, "lookup")
    graph.add_edge("lookup", "plan")
    graph.add_edge("plan", "draft_a")
    graph.add_edge("plan", "draft_b")
    graph.add_edge(["draft_a", "draft_b"], "merge")
    graph.add_edge("merge", END)
    return graph.compile()


QUESTIONS = ("refund for order 1001", "shipping delay on order 2002")


def invoke_runs(graph: Any) -> None:
    """Two successful invocations (two runs), then one whose merge call fails."""
    for question in QUESTIONS:
        graph.invoke({"question": question, "drafts": []})
    try:
        graph.invoke({"question": "warranty claim 3003", "drafts": [], "fail": True})
    except Exception as exc:  # the failed run is the point; its spans are what we keep
        print(f"failing run raised {type(exc).__name__} as intended")
