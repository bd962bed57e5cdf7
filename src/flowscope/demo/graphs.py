"""The workflow graph of each demo workflow, as a Dify builder would have drawn it.

Node ids, types, titles and drawn edges come from the catalogue (`flowscope.demo.workflows`);
each node's config is Dify's node `data`: models and temperatures, prompts, value selectors,
retry and error settings. A node reads its drawn predecessors (a node after an if-else reads
what the if-else tested), so data dependencies are the drawn edges, except where a fact is
planted:

- `talking_points` (meeting-prep) is drawn after `questions` but reads only `briefing` and
  `merge_sources` (`INDEPENDENT_SEQUENTIAL`);
- `qualify` (lead-enrichment) runs at temperature 0.7 and only `is_qualified` reads it;
  `write_email` and `reject_note` read `merge_profile` (`NONDETERMINISTIC_BRANCH`).

Configs agree with the simulation: a node with a `retry_rate` has a `retry_config`, a node
with an `exception_rate` an `error_strategy`; `social_profile` (`FAILING_NODE`) has neither.

    >>> from flowscope.demo.workflows import MEETING_PREP
    >>> graph = demo_graph(MEETING_PREP)
    >>> graph.depends_on("talking_points", "questions"), graph.depends_on("bundle", "questions")
    (False, True)
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from flowscope.demo.workflows import (
    MAX_RETRIES,
    NONDETERMINISTIC_BRANCH,
    RETRY_INTERVAL_MS,
    DemoNode,
    DemoWorkflow,
)
from flowscope.graphs.model import GraphEdge, GraphNode, WorkflowGraph

Selector = tuple[str, str]
_T = TypeVar("_T")

# What each workflow's start node asks for; support-rag is a chatflow and reads `sys.query`.
_START_VARIABLES: dict[str, tuple[str, ...]] = {
    "support-rag": (),
    "ticket-triage": ("ticket", "customer_email"),
    "deep-research": ("topic",),
    "doc-summarizer": ("url",),
    "lead-enrichment": ("email", "company"),
    "meeting-prep": ("event_id",),
}
_OUTPUT = {
    "llm": "text",
    "knowledge-retrieval": "result",
    "http-request": "body",
    "tool": "text",
    "template-transform": "output",
    "variable-aggregator": "output",
    "iteration": "output",
}
_CODE_OUTPUTS = {
    "parse_ticket": ("text", "language"),
    "split_queries": ("queries",),
    "score_priority": ("level", "score"),
}
# Reads that replace the default (the drawn predecessors), keyed by (workflow, node).
_READS: dict[tuple[str, str], tuple[Selector, ...]] = {
    ("support-rag", "pii_scrub"): (("sys", "query"),),
    ("support-rag", "load_history"): (("sys", "conversation_id"),),
    ("support-rag", "faq_search"): (("rewrite_query", "text"),),
    ("support-rag", "docs_search"): (("rewrite_query", "text"),),
    ("ticket-triage", "detect_language"): (("parse_ticket", "language"),),
    # Planted: nothing but the if-else reads qualify.
    ("lead-enrichment", "write_email"): (("merge_profile", "result"),),
    ("lead-enrichment", "reject_note"): (("merge_profile", "result"),),
    # Planted: drawn after questions, reads none of it.
    ("meeting-prep", "talking_points"): (("briefing", "text"), ("merge_sources", "result")),
}
# Reads of earlier nodes on top of the drawn predecessors.
_EXTRA_READS: dict[tuple[str, str], tuple[Selector, ...]] = {
    ("support-rag", "faq_answer"): (("rewrite_query", "text"),),
    ("support-rag", "draft_answer"): (("rewrite_query", "text"),),
    ("ticket-triage", "escalation_summary"): (("fan_out", "output"),),
    ("ticket-triage", "create_issue"): (("fan_out", "output"), ("categorize", "text")),
    ("deep-research", "summarize_source"): (("research_each", "item"),),
    ("deep-research", "write_report"): (("validate_topic", "result"),),
    ("deep-research", "revise_report"): (("write_report", "text"),),
    ("lead-enrichment", "push_crm"): (("normalize_lead", "result"),),
}

# Classifier-like LLM nodes run at temperature 0, writing ones at 0.7.
_DETERMINISTIC = frozenset({"classify_intent", "categorize", "sentiment", "qualify"})
_SYSTEM_PROMPTS = {
    "rewrite_query": "Rewrite the customer's latest message as a standalone search query.",
    "classify_intent": "Classify the question. Answer with one word: faq or complex.",
    "faq_answer": "Answer the question from the FAQ entries below, briefly and kindly.",
    "draft_answer": "You are a support engineer. Answer from the docs, past tickets and "
    "customer data below, and cite the docs you use.",
    "translate_ticket": "Translate the ticket into English; keep product names and errors.",
    "sentiment": "Rate the customer's sentiment: positive, neutral, negative or angry.",
    "categorize": "Categorize the ticket: billing, bug, how-to, account or feature-request.",
    "escalation_summary": "Summarize the ticket for the on-call engineer: impact, customer, "
    "what was tried, what is needed now.",
    "plan_queries": "Plan 3 to 6 web search queries that together cover the topic, one a line.",
    "summarize_source": "Summarize what this source says about the query, facts and figures.",
    "write_report": "Write a structured research report from the findings and background "
    "below. Cite your sources.",
    "critique": "Critique the report: gaps, unsupported claims, unclear passages.",
    "revise_report": "Revise the report following the review; keep structure and citations.",
    "summarize": "Summarize the document in 5 to 8 sentences.",
    "refine": "Tighten the summary: remove repetition, keep every figure and name.",
    "translate": "Translate the summary into German.",
    "headline": "Write a headline of at most 12 words for this summary.",
    "qualify": "Does this lead fit our ideal customer profile (B2B SaaS, 50-5000 employees, a "
    "data team)? Answer yes or no, then one sentence why.",
    "write_email": "Write a short first email to this lead that mentions one concrete fact "
    "from their profile.",
    "polish_email": "Polish the email: tone and grammar, under 120 words.",
    "briefing": "Write a one-page briefing for a sales meeting: the account, the people, "
    "recent news.",
    "questions": "Write five discovery questions for the meeting.",
    "talking_points": "Write talking points for the meeting: what to lead with, what to avoid.",
}
# if-else: (comparison operator, value) tested on what the node reads.
_CONDITIONS = {
    "route": ("contains", "faq"),
    "detect_language": ("is", "en"),
    "urgent": ("is", "urgent"),
    "is_qualified": ("start with", "yes"),
}
_HTTP = {
    "load_history": ("get", "https://support.example.com/api/v1/conversations/history"),
    "crm_lookup": ("get", "https://crm.example.com/api/v1/customers/lookup"),
    "customer_tier": ("post", "https://billing.example.com/api/v1/tier-lookup"),
    "web_search": ("get", "https://search.example.com/v1/search"),
    "publish": ("post", "https://wiki.example.com/api/v2/pages"),
    "fetch_document": ("get", "{{#start.url#}}"),
    "company_api": ("get", "https://companydata.example.com/v2/companies"),
    "social_profile": ("get", "https://socialgraph.example.com/v1/profiles"),
    "push_crm": ("post", "https://crm.example.com/api/v1/leads"),
    "calendar": ("get", "https://calendar.example.com/api/v1/events"),
    "news_search": ("get", "https://news.example.com/v2/everything"),
}
# tool: (provider, tool name, the parameter that receives what the node reads).
_TOOLS = {
    "notify_oncall": ("slack", "send_message", "text"),
    "create_issue": ("jira", "create_issue", "description"),
    "check_links": ("webscraper", "check_links", "text"),
    "notify_author": ("slack", "send_message", "text"),
    "render_cover": ("stability", "text2image", "prompt"),
    "tag_document": ("acme/tagging", "tag_document", "keywords"),
    "scrape_website": ("firecrawl", "scrape", "url"),
    "linkedin": ("linkedin", "person_lookup", "query"),
    "send_email": ("email", "send_mail", "body"),
}
_TIMEOUT = {"max_connect_timeout": 10, "max_read_timeout": 30, "max_write_timeout": 10}


def demo_graph(workflow: DemoWorkflow) -> WorkflowGraph:
    """The graph of a demo workflow: its nodes with Dify configs, and its drawn edges."""
    nodes: list[GraphNode] = []
    edges: list[GraphEdge] = []
    for node in workflow.nodes:
        reads = _reads(workflow, node.node_id)
        nodes.append(_graph_node(workflow, node, reads))
        pred: str | None = None
        for child in node.children:
            first = ((node.node_id, "item"),)
            child_reads = _unique(
                [*(_outputs(workflow, pred) if pred else first), *_extra(workflow, child)]
            )
            nodes.append(_graph_node(workflow, child, child_reads, parent_id=node.node_id))
            if pred is not None:
                edges.append(GraphEdge(pred, child.node_id))
            pred = child.node_id
    for source, target in workflow.edges:
        edges.append(GraphEdge(source, target, _handle(workflow.node(source), target)))
    return WorkflowGraph.build(nodes, edges, format="json")


def _handle(source: DemoNode, target: str) -> str | None:
    """The if-else branch an edge leaves by: its first branch is the case, the second else."""
    if source.node_type != "if-else":
        return None
    return "true" if source.branches[0][0] == target else "false"


def _reads(workflow: DemoWorkflow, node_id: str) -> list[Selector]:
    key = (workflow.workflow_id, node_id)
    if key in _READS:
        return list(_READS[key])
    found = [sel for pred in workflow.predecessors(node_id) for sel in _outputs(workflow, pred)]
    return _unique([*found, *_EXTRA_READS.get(key, ())])


def _extra(workflow: DemoWorkflow, node: DemoNode) -> tuple[Selector, ...]:
    return _EXTRA_READS.get((workflow.workflow_id, node.node_id), ())


def _outputs(workflow: DemoWorkflow, node_id: str) -> list[Selector]:
    """What a node hands to the nodes drawn after it; an if-else hands on what it tested."""
    node = workflow.node(node_id)
    if node.node_type == "start":
        return [("start", v) for v in _START_VARIABLES[workflow.workflow_id]]
    if node.node_type == "if-else":
        tested = _unique([source for source, _ in _reads(workflow, node_id)])
        return [sel for source in tested for sel in _outputs(workflow, source)]
    return [(node_id, _output_name(node))]


def _output_name(node: DemoNode) -> str:
    if node.node_type == "code":
        return _CODE_OUTPUTS.get(node.node_id, ("result",))[0]
    return _OUTPUT[node.node_type]


def _graph_node(
    workflow: DemoWorkflow, node: DemoNode, reads: list[Selector], parent_id: str | None = None
) -> GraphNode:
    config: dict[str, Any] = {"type": node.node_type, "title": node.title, "desc": ""}
    config.update(_BUILDERS[node.node_type](workflow, node, reads))
    if node.retry_rate > 0:
        config["retry_config"] = {
            "retry_enabled": True,
            "max_retries": MAX_RETRIES,
            "retry_interval": int(RETRY_INTERVAL_MS),
        }
    if node.exception_rate > 0:
        # Dify marks a handled failure "exception" and carries on with this value.
        config["error_strategy"] = "default-value"
        config["default_value"] = [{"key": _output_name(node), "type": "string", "value": ""}]
    if parent_id is not None:
        config["isInIteration"] = True
        config["iteration_id"] = parent_id
    return GraphNode(node.node_id, node.node_type, node.title, config, parent_id)


def _template(sel: Selector) -> str:
    return "{{#" + ".".join(sel) + "#}}"


def _variable(sel: Selector) -> str:
    return sel[1] if sel[0] in ("sys", "start") else sel[0]


def _variables(reads: list[Selector]) -> list[dict[str, Any]]:
    return [{"variable": _variable(sel), "value_selector": list(sel)} for sel in reads]


def _labelled(workflow: DemoWorkflow, reads: list[Selector]) -> str:
    lines = []
    for sel in reads:
        label = sel[1] if sel[0] in ("sys", "start") else workflow.node(sel[0]).title
        lines.append(f"{label}:\n{_template(sel)}")
    return "\n\n".join(lines)


def _start(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    variables = _START_VARIABLES[workflow.workflow_id]
    return {
        "variables": [
            {
                "variable": name,
                "label": name.replace("_", " ").capitalize(),
                "type": "paragraph" if name in ("ticket", "topic") else "text-input",
                "required": True,
                "max_length": 4096 if name in ("ticket", "topic") else 256,
            }
            for name in variables
        ]
    }


def _end(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    return {"outputs": _variables(reads)}


def _answer(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    return {"answer": "".join(_template(sel) for sel in reads), "variables": []}


def _llm(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    planted = NONDETERMINISTIC_BRANCH
    deterministic = node.node_id in _DETERMINISTIC and (workflow.workflow_id, node.node_id) != (
        planted.workflow_id,
        planted.node_id,
    )  # the planted branch decision samples at 0.7
    return {
        "model": {
            "provider": node.model_provider,
            "name": node.model_name,
            "mode": "chat",
            "completion_params": {
                "temperature": 0 if deterministic else 0.7,
                "max_tokens": max(64, 4 * node.completion_tokens),
            },
        },
        "prompt_template": [
            {"role": "system", "text": _SYSTEM_PROMPTS[node.node_id]},
            {"role": "user", "text": _labelled(workflow, reads)},
        ],
        "context": {"enabled": False},
        "vision": {"enabled": False},
    }


def _if_else(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    operator, value = _CONDITIONS[node.node_id]
    conditions = [
        {"id": f"c{i}", "variable_selector": list(sel), "comparison_operator": operator,
         "value": value}
        for i, sel in enumerate(reads, 1)
    ]  # fmt: skip
    return {"cases": [{"case_id": "true", "logical_operator": "and", "conditions": conditions}]}


def _http(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    method, url = _HTTP[node.node_id]
    in_url = [sel for sel in reads if _template(sel) in url]
    rest = [sel for sel in reads if sel not in in_url]
    params = body = ""
    if method == "get":
        params = "\n".join(f"{_variable(sel)}:{_template(sel)}" for sel in rest)
    else:
        fields = ", ".join(f'"{_variable(sel)}": "{_template(sel)}"' for sel in rest)
        body = "{" + fields + "}"
    return {
        "method": method,
        "url": url,
        "authorization": {
            "type": "api-key",
            "config": {"type": "bearer", "api_key": "{{#env.API_KEY#}}"},
        },
        "headers": "Accept:application/json",
        "params": params,
        "body": {"type": "json", "data": [{"type": "text", "value": body}]}
        if body
        else {"type": "none", "data": []},
        "timeout": dict(_TIMEOUT),
        "ssl_verify": True,
    }


def _tool(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    provider, tool_name, parameter = _TOOLS[node.node_id]
    return {
        "provider_id": provider,
        "provider_name": provider,
        "provider_type": "builtin",
        "tool_name": tool_name,
        "tool_label": node.title,
        "tool_configurations": {},
        "tool_parameters": {
            parameter: {"type": "mixed", "value": "\n".join(_template(s) for s in reads)}
        },
    }


def _retrieval(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    (query,) = reads  # Dify searches with one query
    dataset = uuid.uuid5(
        uuid.NAMESPACE_URL, f"flowscope-demo/{workflow.workflow_id}/{node.node_id}"
    )
    return {
        "query_variable_selector": list(query),
        "dataset_ids": [str(dataset)],
        "retrieval_mode": "multiple",
        "multiple_retrieval_config": {"top_k": 4, "reranking_enable": False},
    }


def _code(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    names = [_variable(sel) for sel in reads]
    outputs = _CODE_OUTPUTS.get(node.node_id, ("result",))
    body = ", ".join(f'"{name}": ...' for name in outputs)
    code = (
        f"def main({', '.join(f'{n}: str' for n in names)}) -> dict:\n"
        f"    # {node.title}\n"
        f"    return {{{body}}}\n"
    )
    return {
        "code_language": "python3",
        "code": code,
        "variables": _variables(reads),
        "outputs": {
            name: {"type": "array[string]" if name == "queries" else "string", "children": None}
            for name in outputs
        },
    }


def _transform(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    return {
        "template": "\n\n".join("{{ " + _variable(sel) + " }}" for sel in reads),
        "variables": _variables(reads),
    }


def _aggregate(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    return {"output_type": "string", "variables": [list(sel) for sel in reads]}


def _iteration(workflow: DemoWorkflow, node: DemoNode, reads: list[Selector]) -> dict[str, Any]:
    (items,) = reads
    last = node.children[-1]
    return {
        "iterator_selector": list(items),
        "output_selector": [last.node_id, _output_name(last)],
        "output_type": "array[string]",
        "is_parallel": False,
        "parallel_nums": 10,
        "error_handle_mode": "terminated",
    }


_BUILDERS = {
    "start": _start,
    "end": _end,
    "answer": _answer,
    "llm": _llm,
    "if-else": _if_else,
    "http-request": _http,
    "tool": _tool,
    "knowledge-retrieval": _retrieval,
    "code": _code,
    "template-transform": _transform,
    "variable-aggregator": _aggregate,
    "iteration": _iteration,
}


def _unique(items: list[_T]) -> list[_T]:
    return list(dict.fromkeys(items))
