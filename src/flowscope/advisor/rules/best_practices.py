"""Best practices, read from the workflow's graph and checked against its runs."""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping
from statistics import median
from typing import Any
from urllib.parse import urlsplit

from flowscope.advisor.evidence import Evidence, NodeStats, SampleExecution
from flowscope.advisor.rules.base import (
    Finding,
    Impact,
    Rule,
    enough,
    name_of,
    significant_saving,
)
from flowscope.advisor.simulate import replay_savings
from flowscope.graphs.model import BRANCH_TYPES, GraphNode

DEFAULT_PARALLEL_NUMS = 10
"""Dify's default number of items a parallel iteration runs at once."""
_RETRYING_TYPES = ("http-request", "tool")


def observed_nodes(
    evidence: Evidence, types: Collection[str] | None = None
) -> Iterator[tuple[str, GraphNode, NodeStats]]:
    """The graph's nodes (of `types`) with enough executions in the window to speak of."""
    if evidence.graph is None:
        return
    for node_id, node in evidence.graph.nodes.items():
        stats = evidence.nodes.get(node_id)
        if (types is None or node.type in types) and stats is not None and enough(stats, evidence):
            yield node_id, node, stats


def temperature(config: Mapping[str, Any]) -> float | None:
    """An LLM node's temperature (Dify: model.completion_params.temperature), if set."""
    model = config.get("model")
    params = model.get("completion_params") if isinstance(model, Mapping) else None
    value = params.get("temperature") if isinstance(params, Mapping) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


class NondeterministicBranchDecision(Rule):
    """An LLM whose output only decides a branch runs with a temperature above 0.

    From the graph: an `llm` node whose outputs are read only by if-else or
    question-classifier nodes, or a question-classifier itself, with a temperature above 0.
    The same input can then take different branches from one run to the next, and the node
    cannot be cached. No time or money estimate: the gain is consistency (and cacheability).
    """

    id = "nondeterministic-branch-decision"
    category = "best_practices"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        graph = evidence.graph
        found: list[Finding] = []
        for node_id, node, stats in observed_nodes(evidence):
            assert graph is not None
            value = temperature(node.config)
            if value is None or value <= 0:
                continue
            readers = graph.readers(node_id)
            if node.type == "llm":
                if not readers or any(graph.nodes[r].type not in BRANCH_TYPES for r in readers):
                    continue
                decides = ", ".join(readers)
            elif node.type == "question-classifier":
                decides = node_id
            else:
                continue
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(stats)} decides a branch at temperature {value:g}",
                    description=(
                        f"{name_of(stats)}'s output only feeds the branch decision of "
                        f"{decides}, yet it samples at temperature {value:g}: the same input can "
                        "route differently from one run to the next, and the node cannot be "
                        "cached."
                    ),
                    node_ids=[node_id],
                    figures={"temperature": value, "read_by": readers, "node_type": node.type},
                    sample_size=stats.executions,
                    impact=Impact(),
                    confidence=1.0,  # read from the graph
                    severity="medium",
                    steps=(
                        f"Set the temperature of {node_id} to 0.",
                        "Then let the result cache serve repeated inputs (it caches "
                        "temperature-0 LLM nodes).",
                    ),
                )
            )
        return found


class NoRetryOrErrorHandling(Rule):
    """An HTTP request or tool node has neither retries nor an error strategy.

    From the graph: the node's `retry_config.retry_enabled` is not true and it has no
    `error_strategy` (fail branch or default value), so one transient upstream error fails
    the whole run. With failures in the window, severity follows the node's failure rate and
    the impact is the share of runs that saw it fail. Without a failure, it speaks only of a
    node that calls the outside world (an HTTP request; a tool other than another workflow
    or one of Dify's local tools), at low severity, saying why. Exports older than retry
    settings (DSL before 0.1.5, Dify 0.14) could not hold them: only failures speak there.
    """

    id = "no-retry-or-error-handling"
    category = "best_practices"
    refines = ("high-error-rate",)

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        graph = evidence.graph
        found: list[Finding] = []
        for _, node, stats in observed_nodes(evidence, _RETRYING_TYPES):
            retry = node.config.get("retry_config")
            retries = isinstance(retry, Mapping) and retry.get("retry_enabled") is True
            if retries or node.config.get("error_strategy"):
                continue
            old_export = graph is not None and predates_retry_settings(graph.dsl_version)
            calls = outside_call(node)
            if stats.failed == 0 and (old_export or calls is None):
                continue  # nothing failed, and nothing outside could fail it
            found.append(self._finding(evidence, node, stats, calls, old_export))
        return found

    def _finding(
        self,
        evidence: Evidence,
        node: GraphNode,
        stats: NodeStats,
        calls: str | None,
        old_export: bool,
    ) -> Finding:
        rate = stats.error_rate
        name = name_of(stats)
        figures: dict[str, Any] = {
            "error_rate": rate,
            "failed": stats.failed,
            "node_type": node.type,
        }
        if calls is not None:
            figures["calls"] = calls
        steps = [
            "Turn on retries (retry_config: 2-3 attempts with a short interval) for "
            "transient errors.",
            "Set an error strategy: a fail branch, or a default value when the result is optional.",
        ]
        if stats.failed:
            severity = "high" if rate >= 0.05 else "medium" if rate >= 0.01 else "low"
            title = f"{name} fails without retries or error handling"
            description = (
                f"{name}, a {node.type} node, has no retries and no error strategy; it "
                f"failed in {rate:.1%} of its {stats.executions} executions in the window."
            )
            impact = Impact(error_rate=stats.failed / max(1, evidence.runs))
        else:
            severity = "low"
            title = f"{name} calls {calls} without retries or error handling"
            description = (
                f"{name} calls {calls}, outside the workflow, with no retries and no error "
                f"strategy. It did not fail in its {stats.executions} executions in the "
                "window: this is a precaution, since one transient error there would fail "
                "the whole run."
            )
            figures["reason"] = "calls the outside world; no failure observed"
            impact = Impact()
        graph = evidence.graph
        if old_export and graph is not None:
            figures["dsl_version"] = graph.dsl_version
            description += (
                f" The registered graph is a DSL {graph.dsl_version} export, older than "
                "retry settings and error strategies."
            )
            steps.insert(
                0,
                f"On a Dify older than 0.14 (this export is DSL {graph.dsl_version}), "
                "upgrade first: retries and error strategies came with it.",
            )
        return self.finding(
            evidence,
            title=title,
            description=description,
            node_ids=[node.id],
            figures=figures,
            sample_size=stats.executions,
            impact=impact,
            confidence=1.0,
            severity=severity,
            steps=steps,
        )


RETRY_SETTINGS_SINCE = (0, 1, 5)
"""The first DSL version that can hold `retry_config` and `error_strategy`: Dify 0.14
(December 2024) added error strategies and, in 0.14.2, retries; older exports say 0.1.0 to
0.1.4."""
LOCAL_TOOL_PROVIDERS = frozenset(
    {"time", "json_process", "maths", "regex", "qrcode", "chart", "code"}
)
"""Dify tools that run inside Dify (the last part of `provider_id`, plugin or built in)."""
_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def predates_retry_settings(dsl_version: str | None) -> bool:
    """Whether a Dify export is older than retry settings (a neutral graph is not)."""
    match = _VERSION.fullmatch(dsl_version or "")
    if match is None:
        return False
    version = (int(match[1]), int(match[2]), int(match[3] or 0))
    return version < RETRY_SETTINGS_SINCE


def outside_call(node: GraphNode) -> str | None:
    """What an http-request or tool node calls outside Dify (a host, a tool provider), or
    None when it runs inside Dify: another workflow as a tool, or a local tool."""
    config = node.config
    if node.type == "http-request":
        url = config.get("url")
        host = urlsplit(url).netloc if isinstance(url, str) and "{{" not in url else ""
        return host or "a URL"
    provider = config.get("provider_id") or config.get("provider_name")
    if config.get("provider_type") == "workflow" or not isinstance(provider, str):
        return None
    short = provider.rsplit("/", 1)[-1]
    if short in LOCAL_TOOL_PROVIDERS:
        return None
    tool = config.get("tool_name")
    return f"the {short} tool ({tool})" if isinstance(tool, str) and tool else f"the {short} tool"


class SequentialIteration(Rule):
    """An iteration runs its items one after another although each item is slow.

    From the graph: an `iteration` without `is_parallel`. From the sampled runs: the number
    of items and the container's time. The saving replays each run with the container taking
    ceil(items / 10) / items of its time (Dify runs 10 items at once by default) and fires
    when the median saving is significant (`min_saving_ms` or `min_saving_share`).
    """

    id = "sequential-iteration"
    category = "best_practices"
    refines = ("dominant-critical-path-node",)

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        found: list[Finding] = []
        for node_id, node, stats in observed_nodes(evidence, ("iteration",)):
            if node.config.get("is_parallel") is True:
                continue
            items = _items_per_execution(evidence, node_id)
            if not items or median(items.values()) < 2:
                continue
            width = node.config.get("parallel_nums")
            width = width if isinstance(width, int) and width > 1 else DEFAULT_PARALLEL_NUMS

            faster = functools.partial(_in_parallel, node_id=node_id, width=width, items=items)
            savings = replay_savings(evidence.sample, evidence.needs(), faster)
            if not significant_saving(savings.median_ms, evidence):
                continue
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(stats)} runs its items one at a time",
                    description=(
                        f"{name_of(stats)} iterates over {median(items.values()):.0f} items "
                        f"(median) sequentially, taking {stats.p50_ms or 0:.0f} ms (p50). Run "
                        f"in parallel ({width} at once), the median run would be "
                        f"{savings.median_ms:.0f} ms shorter."
                    ),
                    node_ids=[node_id],
                    figures={
                        "median_items": median(items.values()),
                        "p50_ms": stats.p50_ms,
                        "parallel_nums": width,
                        "median_saving_ms_per_run": savings.median_ms,
                        "sampled_runs": savings.runs,
                    },
                    sample_size=len(items),
                    impact=Impact(latency_ms_per_run=savings.median_ms),
                    confidence=min(1.0, len(items) / 100),
                    steps=(
                        f"Turn on parallel mode for {node_id} (is_parallel, up to {width} items "
                        "at once) if the items do not depend on each other.",
                        "Watch the providers' rate limits when items call LLMs or APIs.",
                    ),
                )
            )
        return found


def _in_parallel(
    e: SampleExecution, *, node_id: str, width: int, items: dict[str, int]
) -> int | None:
    """The container's time with its items run `width` at a time."""
    if e.node_id != node_id or e.end_us is None or items.get(e.id, 0) < 2:
        return None
    k = items[e.id]
    return round((e.end_us - e.start_us) * math.ceil(k / width) / k)


def _items_per_execution(evidence: Evidence, container_id: str) -> dict[str, int]:
    """Items each sampled execution of the container ran (distinct child indexes)."""
    found: dict[str, int] = {}
    for run in evidence.sample:
        ids = {e.id for e in run.executions if e.node_id == container_id}
        indexes: dict[str, set[int]] = defaultdict(set)
        for e in run.executions:
            if e.parent_id in ids and e.index is not None:
                indexes[e.parent_id].add(e.index)
        for execution_id in ids:
            found[execution_id] = len(indexes.get(execution_id, ()))
    return found
