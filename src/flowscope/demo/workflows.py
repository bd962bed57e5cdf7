"""The fixed catalogue of demo workflows: three apps, six DAGs of 13 to 22 nodes.

Every workflow starts at a `start` node and ends at an `end` (or `answer`) node; edges point
from a node to the nodes that wait for it. Timing parameters are per node (median and
lognormal sigma of one attempt), so the generator can simulate a run along the graph.

Planted facts that tests, docs and analytics can rely on:

- `REGRESSION`: in `support-assistant/support-rag`, the LLM node `rewrite_query`
  (anthropic claude-3-5-haiku-20241022) runs 1.4x slower in runs that start during the last
  3 days before `end`; nothing else about the workflow changes (no version bump).
- `SLOW_OFF_CRITICAL_PATH`: in `research-copilot/doc-summarizer`, the slowest node,
  `render_cover` (an image-generation tool, ~10 s), sits on a parallel branch; the sibling
  chain of four LLM calls takes ~16 s, so the join seldom waits for it.
- `UNPRICED_MODEL`: the rare `translate_ticket` branch of `support-assistant/ticket-triage`
  (~4% of its runs) calls a self-hosted model that no price table knows.
- `iteration`: `research-copilot/deep-research` runs `research_each` over 3-6 queries, three
  child nodes per item, one item after the other.
- `INDEPENDENT_SEQUENTIAL`: in `sales-outreach/meeting-prep`, `talking_points` is drawn after
  `questions` but its prompt reads only `briefing` and `merge_sources` (see
  `flowscope.demo.graphs`); run side by side, a run would end ~1.8 s (the time of
  `questions`) sooner.
- `FAILING_NODE`: in `sales-outreach/lead-enrichment`, the HTTP node `social_profile` fails
  in ~15% of its executions, with neither retries nor an error strategy in its graph, so each
  failure fails the run.
- `REPEATED_INPUTS`: in `support-assistant/support-rag`, the temperature-0 LLM node
  `classify_intent` sees inputs from a skewed pool of 40 questions, and the engine never
  serves it from a cache: most of its calls repeat one made earlier the same day.
- `NONDETERMINISTIC_BRANCH`: in `sales-outreach/lead-enrichment`, the LLM node `qualify`
  samples at temperature 0.7 although only the if-else `is_qualified` reads its output.

The registered graphs (`flowscope.demo.graphs`) agree with these parameters: nodes with a
`retry_rate` have a `retry_config`, nodes with an `exception_rate` an `error_strategy`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# What the engine does between attempts of a node with retries (Dify's retry_config).
MAX_RETRIES = 2
RETRY_INTERVAL_MS = 1000.0

# Output speed of each model, ms per completion token: LLM time is latency + tokens x speed.
MODEL_MS_PER_TOKEN: dict[str, float] = {
    "gpt-4o-mini": 12.0,
    "gpt-4o": 16.0,
    "claude-3-5-haiku-20241022": 14.0,
    "claude-3-5-sonnet-20241022": 18.0,
    "gemini-1.5-flash": 7.0,
    "deepseek-chat": 30.0,
    "acme-translate-7b": 22.0,
}


@dataclass(frozen=True, slots=True)
class DemoNode:
    """One node of a demo workflow and the distribution its executions are drawn from."""

    node_id: str
    node_type: str
    title: str
    median_ms: float
    sigma: float = 0.4
    # Share of executions that land in a Pareto tail (slow upstream APIs), capped at timeout_ms.
    tail: float = 0.0
    timeout_ms: float = 30_000.0
    model_provider: str | None = None
    model_name: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    fail_rate: float = 0.0
    exception_rate: float = 0.0
    retry_rate: float = 0.0
    # >0: inputs come from a small skewed pool of this many values, so repeats are common.
    input_pool: int = 0
    # Share of executions with a repeated input that the engine served from its cache.
    cache_rate: float = 0.0
    # if-else only: (successor node_id, weight); exactly one successor runs.
    branches: tuple[tuple[str, float], ...] = ()
    # iteration only: a chain of child nodes run once per item, items drawn in this range.
    children: tuple[DemoNode, ...] = ()
    items: tuple[int, int] = (0, 0)


@dataclass(frozen=True)
class DemoWorkflow:
    """A workflow of an app: nodes, edges (source, target) and its share of the traffic."""

    app_id: str
    workflow_id: str
    name: str
    nodes: tuple[DemoNode, ...]
    edges: tuple[tuple[str, str], ...]
    weight: float
    # Fraction of the window after which runs report workflow_version "v2".
    version_switch: float = 0.5
    # >0: run inputs come from a skewed pool (an FAQ bot sees the same questions again).
    input_pool: int = 0
    order: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "order", _topological_order(self))

    def node(self, node_id: str) -> DemoNode:
        for node in self.nodes:
            if node.node_id == node_id:
                return node
            for child in node.children:
                if child.node_id == node_id:
                    return child
        raise KeyError(node_id)

    def successors(self, node_id: str) -> list[str]:
        return [target for source, target in self.edges if source == node_id]

    def predecessors(self, node_id: str) -> list[str]:
        return [source for source, target in self.edges if target == node_id]


@dataclass(frozen=True, slots=True)
class RegressionFacts:
    """A node that became `factor` times slower for runs starting `starts_days_before_end`."""

    app_id: str
    workflow_id: str
    node_id: str
    starts_days_before_end: int
    factor: float


@dataclass(frozen=True, slots=True)
class SlowNodeFacts:
    """The slowest node of a workflow, planted off the critical path."""

    app_id: str
    workflow_id: str
    node_id: str


class PlantedNode(NamedTuple):
    """A node a planted fact is about."""

    app_id: str
    workflow_id: str
    node_id: str


class PlantedEdge(NamedTuple):
    """A drawn edge `first -> second` that a planted fact is about."""

    app_id: str
    workflow_id: str
    first: str
    second: str


REGRESSION = RegressionFacts(
    app_id="support-assistant",
    workflow_id="support-rag",
    node_id="rewrite_query",
    starts_days_before_end=3,
    factor=1.4,
)
SLOW_OFF_CRITICAL_PATH = SlowNodeFacts(
    app_id="research-copilot", workflow_id="doc-summarizer", node_id="render_cover"
)
UNPRICED_MODEL = ("selfhosted", "acme-translate-7b")
INDEPENDENT_SEQUENTIAL = PlantedEdge(
    "sales-outreach", "meeting-prep", "questions", "talking_points"
)
"""`talking_points` waits for `questions` but reads none of its outputs."""
FAILING_NODE = PlantedNode("sales-outreach", "lead-enrichment", "social_profile")
"""Fails ~15% of the time, without retries or an error strategy."""
NONDETERMINISTIC_BRANCH = PlantedNode("sales-outreach", "lead-enrichment", "qualify")
"""An LLM at temperature 0.7 whose output only decides a branch."""
REPEATED_INPUTS = PlantedNode("support-assistant", "support-rag", "classify_intent")
"""A temperature-0 LLM that sees the same few questions again and again, never cached."""


def _topological_order(workflow: DemoWorkflow) -> tuple[str, ...]:
    """Kahn's order of the nodes; raises on unknown ids, cycles, or nodes unreachable."""
    ids = [node.node_id for node in workflow.nodes]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{workflow.workflow_id}: duplicate node ids")
    indegree = dict.fromkeys(ids, 0)
    for source, target in workflow.edges:
        if source not in indegree or target not in indegree:
            raise ValueError(f"{workflow.workflow_id}: edge {source}->{target} to unknown node")
        indegree[target] += 1
    ready = [node_id for node_id in ids if indegree[node_id] == 0]
    if ready != ["start"]:
        raise ValueError(f"{workflow.workflow_id}: roots {ready}, expected only 'start'")
    order: list[str] = []
    while ready:
        node_id = ready.pop(0)
        order.append(node_id)
        for target in workflow.successors(node_id):
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if len(order) != len(ids):
        raise ValueError(f"{workflow.workflow_id}: cycle among {set(ids) - set(order)}")
    return tuple(order)


def _edges(*lines: str) -> tuple[tuple[str, str], ...]:
    """`"a b > c d"` connects every source on the left to every target on the right."""
    pairs: list[tuple[str, str]] = []
    for line in lines:
        left, right = line.split(">")
        pairs.extend((s, t) for s in left.split() for t in right.split())
    return tuple(pairs)


# Small constructors keep the catalogue readable; defaults are typical for each node type.
def _start() -> DemoNode:
    return DemoNode("start", "start", "Start", median_ms=2, sigma=0.3)


def _end(kind: str = "end") -> DemoNode:
    return DemoNode(kind, kind, kind.capitalize(), median_ms=3, sigma=0.3)


def _llm(
    node_id: str, title: str, provider: str, model: str, prompt: int, completion: int, **kw: Any
) -> DemoNode:
    kw = {"median_ms": 450, "sigma": 0.3, "fail_rate": 0.004, "retry_rate": 0.02, **kw}
    return DemoNode(
        node_id, "llm", title, model_provider=provider, model_name=model,
        prompt_tokens=prompt, completion_tokens=completion, **kw,
    )  # fmt: skip


def _retrieval(node_id: str, title: str, **kw: Any) -> DemoNode:
    kw = {"median_ms": 280, "sigma": 0.35, "fail_rate": 0.002, **kw}
    return DemoNode(node_id, "knowledge-retrieval", title, **kw)


def _http(node_id: str, title: str, **kw: Any) -> DemoNode:
    # Upstream APIs: wide spread and a heavy tail.
    kw = {
        "median_ms": 220,
        "sigma": 0.6,
        "tail": 0.04,
        "fail_rate": 0.006,
        "retry_rate": 0.03,
        **kw,
    }
    return DemoNode(node_id, "http-request", title, **kw)


def _code(node_id: str, title: str, **kw: Any) -> DemoNode:
    kw = {"median_ms": 25, "sigma": 0.5, "fail_rate": 0.001, **kw}
    return DemoNode(node_id, "code", title, **kw)


def _tool(node_id: str, title: str, **kw: Any) -> DemoNode:
    kw = {"median_ms": 700, "sigma": 0.5, "fail_rate": 0.004, "retry_rate": 0.02, **kw}
    return DemoNode(node_id, "tool", title, **kw)


def _if(node_id: str, title: str, *branches: tuple[str, float]) -> DemoNode:
    return DemoNode(node_id, "if-else", title, median_ms=2, sigma=0.3, branches=branches)


def _template(node_id: str, title: str) -> DemoNode:
    return DemoNode(node_id, "template-transform", title, median_ms=6, sigma=0.4)


def _aggregate(node_id: str, title: str) -> DemoNode:
    return DemoNode(node_id, "variable-aggregator", title, median_ms=2, sigma=0.3)


def _iteration(node_id: str, title: str, items: tuple[int, int], *children: DemoNode) -> DemoNode:
    return DemoNode(node_id, "iteration", title, median_ms=5, items=items, children=children)


_MINI = ("openai", "gpt-4o-mini")
_4O = ("openai", "gpt-4o")
_HAIKU = ("anthropic", "claude-3-5-haiku-20241022")
_SONNET = ("anthropic", "claude-3-5-sonnet-20241022")
_FLASH = ("google", "gemini-1.5-flash")
_DEEPSEEK = ("deepseek", "deepseek-chat")

SUPPORT_RAG = DemoWorkflow(
    app_id="support-assistant",
    workflow_id="support-rag",
    name="Support answer (RAG)",
    weight=0.34,
    version_switch=0.4,
    input_pool=400,
    nodes=(
        _start(),
        _code("pii_scrub", "Scrub PII"),
        _http("load_history", "Load conversation history", median_ms=120),
        _llm("rewrite_query", "Rewrite query", *_HAIKU, 380, 60, median_ms=420, sigma=0.25),
        # temperature 0 and a skewed pool of questions: the cache analysis finds repeats here.
        _llm("classify_intent", "Classify", *_MINI, 520, 8, input_pool=40),
        _if("route", "FAQ or complex?", ("faq_search", 0.6), ("docs_search", 0.4)),
        _retrieval("faq_search", "Search FAQ", input_pool=300, cache_rate=0.1),
        _llm("faq_answer", "Answer from FAQ", *_MINI, 1400, 180),
        _retrieval("docs_search", "Search product docs", input_pool=500, median_ms=340),
        _retrieval("ticket_search", "Search past tickets", median_ms=420),
        _http("crm_lookup", "CRM customer lookup", exception_rate=0.02),
        _template("build_context", "Build context"),
        _llm("draft_answer", "Draft answer", *_SONNET, 3200, 420, median_ms=900),
        _aggregate("pick_answer", "Pick answer"),
        _template("format_answer", "Format answer"),
        _end("answer"),
    ),
    edges=_edges(
        "start > pii_scrub load_history",
        "pii_scrub load_history > rewrite_query",
        "rewrite_query > classify_intent",
        "classify_intent > route",
        "route > faq_search docs_search",
        "faq_search > faq_answer",
        "docs_search > ticket_search crm_lookup build_context",
        "ticket_search crm_lookup > build_context",
        "build_context > draft_answer",
        "faq_answer draft_answer > pick_answer",
        "pick_answer > format_answer",
        "format_answer > answer",
    ),
)

TICKET_TRIAGE = DemoWorkflow(
    app_id="support-assistant",
    workflow_id="ticket-triage",
    name="Ticket triage",
    weight=0.2,
    version_switch=0.55,
    nodes=(
        _start(),
        _code("parse_ticket", "Parse ticket"),
        _if("detect_language", "English?", ("fan_out", 0.96), ("translate_ticket", 0.04)),
        # A self-hosted model no price table knows: its cost stays unpriced.
        _llm("translate_ticket", "Translate ticket", *UNPRICED_MODEL, 900, 700, median_ms=600),
        _aggregate("fan_out", "Ticket text"),
        _llm("sentiment", "Sentiment", *_HAIKU, 700, 12, median_ms=380),
        _llm("categorize", "Categorize", *_MINI, 800, 15, input_pool=80, cache_rate=0.15),
        _retrieval("similar_tickets", "Similar tickets"),
        _http("customer_tier", "Customer tier", exception_rate=0.01),
        _code("score_priority", "Score priority"),
        _if("urgent", "Urgent?", ("escalation_summary", 0.2), ("create_issue", 0.8)),
        _llm("escalation_summary", "Escalation summary", *_4O, 1800, 300, median_ms=700),
        _tool("notify_oncall", "Notify on-call (Slack)", median_ms=450),
        _tool("create_issue", "Create Jira issue", median_ms=900, fail_rate=0.006),
        _aggregate("collect", "Collect outcome"),
        _end(),
    ),
    edges=_edges(
        "start > parse_ticket",
        "parse_ticket > detect_language",
        "detect_language > fan_out translate_ticket",
        "translate_ticket > fan_out",
        "fan_out > sentiment categorize similar_tickets customer_tier",
        "sentiment categorize similar_tickets customer_tier > score_priority",
        "score_priority > urgent",
        "urgent > escalation_summary create_issue",
        "escalation_summary > notify_oncall",
        "notify_oncall create_issue > collect",
        "collect > end",
    ),
)

DEEP_RESEARCH = DemoWorkflow(
    app_id="research-copilot",
    workflow_id="deep-research",
    name="Deep research report",
    weight=0.09,
    version_switch=0.3,
    nodes=(
        _start(),
        _code("validate_topic", "Validate topic"),
        _llm("plan_queries", "Plan search queries", *_4O, 900, 220, median_ms=800),
        _code("split_queries", "Split queries"),
        _retrieval("internal_notes", "Internal notes", median_ms=380),
        _retrieval("glossary", "Glossary", median_ms=150, input_pool=40),
        _template("background", "Background brief"),
        _iteration(
            "research_each",
            "Research each query",
            (3, 6),
            _http("web_search", "Web search", median_ms=650, tail=0.06, fail_rate=0.002),
            _code("extract_text", "Extract text", median_ms=40),
            _llm("summarize_source", "Summarize source", *_MINI, 2600, 220, median_ms=500),
        ),
        _template("merge_findings", "Merge findings"),
        _llm("write_report", "Write report", *_SONNET, 6000, 900, median_ms=1200),
        _llm("critique", "Critique report", *_DEEPSEEK, 7000, 300, median_ms=900),
        _code("word_count", "Word count", median_ms=8),
        # Best effort: no retries, a default value when it fails.
        _tool(
            "check_links",
            "Check links",
            median_ms=1500,
            tail=0.05,
            exception_rate=0.02,
            retry_rate=0.0,
        ),
        _aggregate("review", "Collect review"),
        _llm("revise_report", "Revise report", *_4O, 8000, 800, median_ms=1000),
        _code("to_markdown", "Render Markdown"),
        _http("publish", "Publish to wiki", median_ms=300),
        _tool("notify_author", "Notify author", median_ms=400),
        _end(),
    ),
    edges=_edges(
        "start > validate_topic",
        "validate_topic > plan_queries internal_notes glossary",
        "plan_queries > split_queries",
        "internal_notes glossary > background",
        "split_queries > research_each",
        "research_each background > merge_findings",
        "merge_findings > write_report",
        "write_report > critique word_count check_links",
        "critique word_count check_links > review",
        "review > revise_report",
        "revise_report > to_markdown",
        "to_markdown > publish notify_author",
        "publish notify_author > end",
    ),
)

DOC_SUMMARIZER = DemoWorkflow(
    app_id="research-copilot",
    workflow_id="doc-summarizer",
    name="Document summary with cover",
    weight=0.12,
    version_switch=0.65,
    nodes=(
        _start(),
        _http("fetch_document", "Fetch document", median_ms=400),
        _code("chunk", "Chunk document", median_ms=60),
        # The main chain: four LLM calls, ~15 s together.
        _llm("summarize", "Summarize", *_MINI, 9000, 300, median_ms=1500),
        _llm("refine", "Refine summary", *_SONNET, 2500, 250, median_ms=1200),
        _llm("translate", "Translate summary", *_FLASH, 1200, 300, median_ms=800),
        _llm("headline", "Write headline", *_4O, 900, 30, median_ms=1400),
        # The slowest node (~10 s) on a branch the join rarely waits for.
        _tool("render_cover", "Render cover image", median_ms=10_000, sigma=0.2),
        _code("extract_keywords", "Extract keywords", median_ms=90),
        _tool("tag_document", "Tag document", median_ms=350),
        _aggregate("join", "Join branches"),
        _template("compose", "Compose page"),
        _end(),
    ),
    edges=_edges(
        "start > fetch_document",
        "fetch_document > chunk",
        "chunk > summarize render_cover extract_keywords",
        "summarize > refine",
        "refine > translate",
        "translate > headline",
        "extract_keywords > tag_document",
        "headline render_cover tag_document > join",
        "join > compose",
        "compose > end",
    ),
)

LEAD_ENRICHMENT = DemoWorkflow(
    app_id="sales-outreach",
    workflow_id="lead-enrichment",
    name="Lead enrichment and first email",
    weight=0.15,
    version_switch=0.5,
    nodes=(
        _start(),
        _code("normalize_lead", "Normalize lead"),
        _http("company_api", "Company data API", median_ms=350),
        # The planted failing node: a flaky upstream API, no retries, no error strategy.
        _http("social_profile", "Social profile", median_ms=500, fail_rate=0.15, retry_rate=0.0),
        _retrieval("crm_notes", "CRM notes"),
        _tool("scrape_website", "Scrape website", median_ms=1800, tail=0.05),
        _code("merge_profile", "Merge profile"),
        # Decides the branch alone, at temperature 0.7 (see flowscope.demo.graphs).
        _llm("qualify", "Qualify lead", *_MINI, 1500, 40, median_ms=400),
        _if("is_qualified", "Qualified?", ("write_email", 0.55), ("reject_note", 0.45)),
        _llm("write_email", "Write email", *_HAIKU, 2200, 350, median_ms=500),
        _llm("polish_email", "Polish email", *_4O, 900, 330, median_ms=600),
        _template("reject_note", "Rejection note"),
        _aggregate("outcome", "Outcome"),
        _http("push_crm", "Push to CRM", median_ms=260),
        _end(),
    ),
    edges=_edges(
        "start > normalize_lead",
        "normalize_lead > company_api social_profile crm_notes scrape_website",
        "company_api social_profile crm_notes scrape_website > merge_profile",
        "merge_profile > qualify",
        "qualify > is_qualified",
        "is_qualified > write_email reject_note",
        "write_email > polish_email",
        "polish_email reject_note > outcome",
        "outcome > push_crm",
        "push_crm > end",
    ),
)

MEETING_PREP = DemoWorkflow(
    app_id="sales-outreach",
    workflow_id="meeting-prep",
    name="Meeting preparation brief",
    weight=0.1,
    version_switch=0.7,
    nodes=(
        _start(),
        _http("calendar", "Read calendar event", median_ms=180),
        _retrieval("account_notes", "Account notes", input_pool=120),
        _http("news_search", "News search", median_ms=900, tail=0.08, fail_rate=0.004),
        _tool("linkedin", "LinkedIn lookup", median_ms=1100),
        _code("merge_sources", "Merge sources"),
        _llm("briefing", "Write briefing", *_4O, 5000, 700, median_ms=900),
        _llm("talking_points", "Talking points", *_DEEPSEEK, 2000, 250, median_ms=800),
        _llm("questions", "Discovery questions", *_FLASH, 1800, 200, median_ms=400),
        _template("agenda", "Agenda"),
        _aggregate("bundle", "Bundle brief"),
        _template("format_brief", "Format brief"),
        _tool("send_email", "Send email", median_ms=500),
        _end(),
    ),
    edges=_edges(
        "start > calendar account_notes news_search linkedin",
        "calendar account_notes news_search linkedin > merge_sources",
        "merge_sources > briefing",
        "briefing > questions agenda",
        # Drawn in a row, but talking_points reads only briefing: the planted independent pair.
        "questions > talking_points",
        "talking_points questions agenda > bundle",
        "bundle > format_brief",
        "format_brief > send_email",
        "send_email > end",
    ),
)

_CATALOGUE = (
    SUPPORT_RAG,
    TICKET_TRIAGE,
    DEEP_RESEARCH,
    DOC_SUMMARIZER,
    LEAD_ENRICHMENT,
    MEETING_PREP,
)


def demo_workflows() -> list[DemoWorkflow]:
    """The fixed catalogue, in a stable order (the generator's draws depend on it)."""
    return list(_CATALOGUE)
