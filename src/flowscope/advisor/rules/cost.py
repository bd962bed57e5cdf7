"""Cost: paying for work that could be avoided or bought cheaper."""

from __future__ import annotations

import functools
from statistics import median

from flowscope.advisor.evidence import CacheFact, Evidence, NodeStats, SampleExecution
from flowscope.advisor.rules.base import Finding, Impact, Rule, enough, name_of
from flowscope.advisor.simulate import replay_savings, simulate_cache
from flowscope.cache.policy import DEFAULT_OTHER_TTL_SECONDS, DEFAULT_TTL_SECONDS
from flowscope.runs.pricing import provider_id

SMALL_MODELS: dict[str, tuple[str, ...]] = {
    "openai": ("gpt-4o-mini", "gpt-4.1-mini", "gpt-4.1-nano"),
    "anthropic": ("claude-3-5-haiku-20241022", "claude-3-haiku-20240307"),
    "google": ("gemini-1.5-flash", "gemini-2.0-flash"),
    "gemini": ("gemini-1.5-flash", "gemini-2.0-flash"),
    "mistral": ("mistral-small-latest",),
    "deepseek": ("deepseek-chat",),
}
"""The cheaper models suggested per provider: small general-purpose models of each; priced
from the price table on the node's own token counts."""
PROMPT_TRIM_SHARE = 0.25
"""The prompt-cost rule's estimate: the saving if a quarter of the prompt tokens went."""
MIN_NODE_COST_SHARE = 0.1
"""Prompt-heavy nodes are reported only when they cost at least this share of the workflow."""


class UncachedRepeatedInputs(Rule):
    """A cacheable node sees the same inputs again and again, but the cache serves few of them.

    Replays the node's sampled executions, in time order, through a simulated cache keyed by
    their input hash with the node's TTL from the cache policy: the would-hit rate is the
    share a cache would have served. Fires when it is at least `min_would_hit_rate` and the
    actual hit rate is under half of it. The money saved is the cost of the would-be hits
    that were paid for; the time saved replays each sampled run with those executions taking
    no time (a node with slack saves nothing), averaged over runs.
    """

    id = "uncached-repeated-inputs"
    category = "cost"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        found: list[Finding] = []
        for node in evidence.nodes.values():
            fact = _cache_fact(evidence, node)
            if not enough(node, evidence) or not fact.cacheable:
                continue
            executions = evidence.node_executions(node.node_id)
            replay = simulate_cache(executions, fact.ttl_seconds or DEFAULT_OTHER_TTL_SECONDS)
            actual_rate = node.cache_hits / node.executions if node.executions else 0.0
            rate = replay.would_hit_rate
            if replay.executions < evidence.thresholds.min_executions:
                continue
            if rate < evidence.thresholds.min_would_hit_rate or actual_rate >= rate / 2:
                continue
            paid = [e for e in executions if e.id in replay.would_hit and not e.cache_hit]
            saved_cost = sum(e.cost or 0.0 for e in paid)
            runs = len(evidence.sample) or 1
            skipped = {e.id for e in paid}
            savings = replay_savings(
                evidence.sample, evidence.needs(), functools.partial(_skip, ids=skipped)
            )
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(node)} repeats inputs: a cache would serve {rate:.0%}",
                    description=(
                        f"Replayed through a cache with a {fact.ttl_seconds} s TTL, "
                        f"{len(replay.would_hit)} of {replay.executions} sampled executions of "
                        f"{name_of(node)} had the same inputs as an earlier one; the cache "
                        f"served {actual_rate:.0%}. Caching would save "
                        f"{saved_cost / runs * 1000:.4g} per 1,000 runs and "
                        f"{savings.mean_ms:.0f} ms per run on average."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "would_hit_rate": rate,
                        "actual_hit_rate": actual_rate,
                        "ttl_seconds": fact.ttl_seconds,
                        "sampled_executions": replay.executions,
                        "would_be_hits": len(replay.would_hit),
                        "saved_cost_in_sample": saved_cost,
                        "mean_saving_ms_per_run": savings.mean_ms,
                        "sampled_runs": runs,
                    },
                    sample_size=replay.executions,
                    impact=Impact(
                        latency_ms_per_run=savings.mean_ms or None,
                        cost_per_1k_runs=saved_cost / runs * 1000 or None,
                    ),
                    confidence=min(1.0, replay.executions / 300),
                    steps=(
                        f"Wrap the node with the flowscope result cache (SDK `cache.node` or "
                        f"POST /api/v1/cache/lookup) with a TTL of {fact.ttl_seconds} s.",
                        "Check that everything the result depends on is in the cache key "
                        "(inputs, model, prompt version).",
                    ),
                )
            )
        return found


class ExpensiveModelForShortTask(Rule):
    """An LLM node pays for a large model on short prompts and short outputs.

    Fires when the node's median prompt and completion are within
    `expensive_model_max_prompt_tokens` and `expensive_model_max_completion_tokens`, and a
    small model of the same provider (a fixed list: SMALL_MODELS) would cost at most
    `cheaper_model_max_cost_share` of what it cost, priced from the price table on the
    sampled executions' own token counts. Quality is not measured: check it before switching.
    """

    id = "expensive-model-for-short-task"
    category = "cost"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        t = evidence.thresholds
        found: list[Finding] = []
        if evidence.price is None:
            return found
        for node in evidence.nodes.values():
            if node.node_type != "llm" or not enough(node, evidence):
                continue
            calls = [
                e
                for e in evidence.node_executions(node.node_id)
                if e.model_name and e.cost and e.prompt_tokens is not None
            ]
            if len(calls) < t.min_executions:
                continue
            prompt = median(e.prompt_tokens or 0 for e in calls)
            completion = median(e.completion_tokens or 0 for e in calls)
            if prompt > t.expensive_model_max_prompt_tokens:
                continue
            if completion > t.expensive_model_max_completion_tokens:
                continue
            current = sum(e.cost or 0.0 for e in calls)
            best = _cheapest_alternative(evidence, calls)
            if best is None or best[1] > t.cheaper_model_max_cost_share * current:
                continue
            model, cheaper = best
            runs = len(evidence.sample) or 1
            saving = (current - cheaper) / runs * 1000
            now = calls[-1].model_name
            found.append(
                self.finding(
                    evidence,
                    title=f"{name_of(node)} could use {model} instead of {now}",
                    description=(
                        f"{name_of(node)} sends {prompt:.0f} prompt tokens and gets "
                        f"{completion:.0f} back (medians): a short task. On the same tokens, "
                        f"{model} would cost {cheaper / current:.0%} of {now}, saving "
                        f"{saving:.4g} per 1,000 runs."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "model": now,
                        "suggested_model": model,
                        "median_prompt_tokens": prompt,
                        "median_completion_tokens": completion,
                        "cost_in_sample": current,
                        "suggested_cost_in_sample": cheaper,
                    },
                    sample_size=len(calls),
                    impact=Impact(cost_per_1k_runs=saving),
                    confidence=0.6,  # the price is certain; whether quality holds is not
                    steps=(
                        f"Run {model} on a sample of this node's recent inputs and compare the "
                        "answers.",
                        f"If they hold up, switch the node's model to {model}.",
                    ),
                )
            )
        return found


class PromptCostDominates(Rule):
    """Prompt tokens make up most of an LLM node's cost.

    Prices each sampled execution's prompt alone and in full; fires when prompts are at
    least `prompt_cost_share` of the node's cost, average at least `min_prompt_tokens`, and
    the node is at least 10% of the workflow's cost. The estimate is the saving if a quarter
    of the prompt tokens went (trimmed context, fewer retrieved chunks), as a rule of thumb
    the figures let one redo.
    """

    id = "prompt-cost-dominates"
    category = "cost"

    def evaluate(self, evidence: Evidence) -> list[Finding]:
        t = evidence.thresholds
        found: list[Finding] = []
        total_cost = sum(n.cost for n in evidence.nodes.values())
        if evidence.price is None or total_cost <= 0:
            return found
        for node in evidence.nodes.values():
            if node.node_type != "llm" or not enough(node, evidence):
                continue
            if node.cost < MIN_NODE_COST_SHARE * total_cost:
                continue
            if node.prompt_tokens < t.min_prompt_tokens * node.executions:
                continue
            prompt_cost = full_cost = 0.0
            calls = 0
            for e in evidence.node_executions(node.node_id):
                if not e.model_name or e.prompt_tokens is None:
                    continue
                full = evidence.price(
                    e.model_provider, e.model_name, e.prompt_tokens, e.completion_tokens or 0
                )
                only = evidence.price(e.model_provider, e.model_name, e.prompt_tokens, 0)
                if full and only is not None:
                    prompt_cost, full_cost, calls = prompt_cost + only, full_cost + full, calls + 1
            if calls < t.min_executions or full_cost <= 0:
                continue
            share = prompt_cost / full_cost
            if share < t.prompt_cost_share:
                continue
            runs = len(evidence.sample) or 1
            saving = PROMPT_TRIM_SHARE * prompt_cost / runs * 1000
            found.append(
                self.finding(
                    evidence,
                    title=f"Prompts are {share:.0%} of {name_of(node)}'s cost",
                    description=(
                        f"{name_of(node)} costs {node.cost / total_cost:.0%} of the workflow, "
                        f"and {share:.0%} of that is prompt tokens "
                        f"({node.prompt_tokens / max(1, node.executions):.0f} per call on "
                        f"average). A quarter fewer prompt tokens would save {saving:.4g} per "
                        "1,000 runs."
                    ),
                    node_ids=[node.node_id],
                    figures={
                        "prompt_cost_share": share,
                        "node_cost_share": node.cost / total_cost,
                        "mean_prompt_tokens": node.prompt_tokens / max(1, node.executions),
                        "mean_completion_tokens": node.completion_tokens / max(1, node.executions),
                    },
                    sample_size=calls,
                    impact=Impact(cost_per_1k_runs=saving),
                    confidence=0.8,
                    steps=(
                        "Trim the context: fewer or shorter retrieved chunks, shorter history, "
                        "no repeated instructions.",
                        "Put the unchanging part of the prompt first and turn on the provider's "
                        "prompt caching (cached input tokens cost a fraction).",
                    ),
                )
            )
        return found


def _skip(e: SampleExecution, *, ids: set[str]) -> int | None:
    """A would-be cache hit takes no time."""
    return 0 if e.id in ids else None


def _cache_fact(evidence: Evidence, node: NodeStats) -> CacheFact:
    known = evidence.cache.get(node.node_id)
    if known is not None:
        return known
    # Without a graph, only node types cacheable whatever their config.
    if node.node_type == "knowledge-retrieval":
        return CacheFact(True, DEFAULT_TTL_SECONDS[node.node_type], "knowledge-retrieval")
    return CacheFact(False, None, "no graph: the node's config is unknown")


def _cheapest_alternative(
    evidence: Evidence, calls: list[SampleExecution]
) -> tuple[str, float] | None:
    assert evidence.price is not None
    provider = provider_id(calls[-1].model_provider)
    best: tuple[str, float] | None = None
    for model in SMALL_MODELS.get(provider or "", ()):
        if any(e.model_name == model for e in calls):
            continue
        total = 0.0
        for e in calls:
            cost = evidence.price(
                calls[-1].model_provider, model, e.prompt_tokens or 0, e.completion_tokens or 0
            )
            if cost is None:
                break
            total += cost
        else:
            if best is None or total < best[1]:
                best = (model, total)
    return best
