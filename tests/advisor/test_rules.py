"""Every rule, firing and not firing, on evidence built for it (table-driven)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from flowscope.advisor.evidence import CacheFact, Evidence, RegressionFact, SampleRun
from flowscope.advisor.rules import RULES, Finding, Impact, Rule
from flowscope.advisor.rules.base import severity_of
from flowscope.advisor.rules.best_practices import (
    NondeterministicBranchDecision,
    NoRetryOrErrorHandling,
    SequentialIteration,
)
from flowscope.advisor.rules.cost import (
    ExpensiveModelForShortTask,
    PromptCostDominates,
    UncachedRepeatedInputs,
)
from flowscope.advisor.rules.parallelization import IndependentSequentialNodes
from flowscope.advisor.rules.performance import (
    DominantCriticalPathNode,
    HighTailLatency,
    OutputLengthDrivesLatency,
)
from flowscope.advisor.rules.reliability import (
    FailuresConcentratedInTime,
    HighErrorRate,
    RetriesConsumeTime,
)
from flowscope.advisor.rules.scalability import RisingLatencyOrCost, TokensPerRunGrowing
from flowscope.advisor.thresholds import Thresholds
from flowscope.runs.pricing import PriceBook
from tests.advisor.builders import (
    HOUR_US,
    T0,
    chain_run,
    evidence_of,
    execution,
    graph_chain,
    graph_of,
    real_graph,
    with_stats,
)

PRICES = PriceBook()
SANDBOX_CALL = "1733305706063"
"""The one http-request node of the real export svcvit_runLLMCode (DSL 0.1.4): a call to
Dify's code sandbox."""


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], Evidence]
    fires: bool
    check: Callable[[list[Finding]], Any] | None = None


def run_case(rule: type[Rule], case: Case) -> list[Finding]:
    findings = rule().evaluate(case.build())
    assert bool(findings) is case.fires, [f.title for f in findings]
    for finding in findings:
        assert finding.rule_id == rule.id and finding.category == rule.category
        assert finding.severity in ("critical", "high", "medium", "low")
        assert 0.0 <= finding.confidence <= 1.0
        assert finding.action_steps
    if case.check is not None:
        assert case.check(findings) is not False, [f.figures for f in findings]
    return findings


def cases(*items: Case) -> Any:
    return pytest.mark.parametrize("case", items, ids=[c.name for c in items])


def chain(n: int, steps: list[tuple[str, float]], **kw: Any) -> list[SampleRun]:
    return [chain_run(i, steps, **kw) for i in range(n)]


# -- performance ------------------------------------------------------------------------------


def _on_chain(ev: Evidence) -> Evidence:
    """Critical-path figures of runs that are one chain of nodes (no slack): each node is on
    the path for all its time, and halving it saves half of it."""
    total = sum(n.mean_ms or 0.0 for n in ev.nodes.values())
    for node_id, n in ev.nodes.items():
        ms = n.mean_ms or 0.0
        with_stats(ev, node_id, critical_path_share=ms / total, on_critical_path_rate=1.0,
                   critical_path_ms_per_run=ms, halving_saving_ms_per_run=ms / 2,
                   halving_mean_saving_ms_per_run=ms / 2)  # fmt: skip
    return ev


def _dominant(share: float, executions: int = 100, halving_saves: float = 350.0) -> Evidence:
    ev = _on_chain(evidence_of(chain(executions, [("a", 300), ("b", 700)])))
    return with_stats(
        ev, "b", critical_path_share=share, halving_saving_ms_per_run=halving_saves,
        halving_mean_saving_ms_per_run=halving_saves,
    )  # fmt: skip


def _one_llm(glue_ms: float = 5.0) -> Evidence:
    steps = [("start", 5.0), ("prepare", glue_ms), ("answer", 3000.0), ("end", 5.0)]
    return _on_chain(evidence_of(chain(60, steps)))


def _real_one_llm_chain() -> Evidence:
    # codes of a few ms, one LLM, and a call to Dify's code sandbox (150 ms saved if halved:
    # neither 200 ms nor 10% of the run)
    graph = real_graph("svcvit_runLLMCode")
    runs = graph_chain(graph, {"1733308734162": 4000.0, SANDBOX_CALL: 300.0}, 60)
    return _on_chain(evidence_of(runs, graph=graph))


@cases(
    Case("dominant", lambda: _dominant(0.7), True,
         lambda f: (f[0].node_ids == ("b",)) and _eq(f[0].impact.latency_ms_per_run, 350.0)),
    Case("small share", lambda: _dominant(0.2), False),
    Case("too few executions", lambda: _dominant(0.7, executions=10), False),
    Case("one LLM between start and end", lambda: _one_llm(), False),
    Case("one LLM after a 150 ms step (75 ms saved if halved)", lambda: _one_llm(150.0), False),
    Case("one LLM after a 1 s step", lambda: _one_llm(1000.0), True,
         lambda f: f[0].node_ids == ("answer",)),
    Case("real one-LLM chain (DSL 0.1.4 export)", _real_one_llm_chain, False),
    Case("halving it saves a typical run nothing (off the path in most runs)",
         lambda: _dominant(0.7, halving_saves=0.0), False),
)  # fmt: skip
def test_dominant_critical_path_node(case: Case) -> None:
    run_case(DominantCriticalPathNode, case)


def _tail(slow_every: int | None, *, off_path: bool = False) -> Evidence:
    runs = []
    for i in range(300):
        slow = slow_every is not None and i % slow_every == 0
        b = 2000.0 if slow else 100.0
        if off_path:
            # b runs beside a 5 s node: the run waits for that one, never for b.
            start = T0 / 1000 + i * 60_000
            executions = [
                execution(f"r{i}", "a", start, start + 5000),
                execution(f"r{i}", "b", start, start + b),
            ]
            runs.append(SampleRun(f"r{i}", "succeeded", round(start * 1000),
                                  round((start + 5000) * 1000), executions))  # fmt: skip
        else:
            runs.append(chain_run(i, [("a", 300), ("b", b)]))
    graph = graph_of(
        [("a", "llm", {}), ("b", "http-request", {})], [] if off_path else [("a", "b")]
    )
    return evidence_of(runs, graph=graph)


@cases(
    Case("3% of executions 20x slower", lambda: _tail(33), True,
         lambda f: f[0].node_ids == ("b",) and f[0].figures["tail_ratio"] >= 4
         and f[0].impact.latency_ms_per_run > 0),
    Case("steady", lambda: _tail(None), False),
    Case("tail with slack saves nothing", lambda: _tail(33, off_path=True), False),
)  # fmt: skip
def test_high_tail_latency(case: Case) -> None:
    run_case(HighTailLatency, case)


def _output_length(correlated: bool) -> Evidence:
    rng = random.Random(1)
    runs = []
    for i in range(120):
        # Most answers are short; one in twenty runs on for thousands of tokens.
        roll = rng.random()
        tokens = (rng.randint(100, 300) if roll < 0.85 else rng.randint(1000, 1500)
                  if roll < 0.95 else rng.randint(3000, 5000))  # fmt: skip
        ms = 300 + 20 * tokens if correlated else rng.uniform(300, 16_000)
        runs.append(
            chain_run(i, [("start", 5), ("write", ms)],
                      fields=lambda _, n, t=tokens: {"completion_tokens": t} if n == "write" else {})
        )  # fmt: skip
    return evidence_of(runs)


@cases(
    Case("20 ms per output token", lambda: _output_length(True), True,
         lambda f: abs(f[0].figures["ms_per_output_token"] - 20) < 0.5
         and f[0].impact.latency_ms_per_run > 200),
    Case("latency unrelated to length", lambda: _output_length(False), False),
)  # fmt: skip
def test_output_length_drives_latency(case: Case) -> None:
    run_case(OutputLengthDrivesLatency, case)


# -- cost -------------------------------------------------------------------------------------


def _repeats(pool: int | None, *, hit_every: int = 0, slack: bool = False) -> Evidence:
    runs = []
    for i in range(200):
        key = f"h{i % pool}" if pool else f"u{i}"
        fields = {"node_type": "knowledge-retrieval", "input_hash": key, "cost": 0.001,
                  "cache_hit": bool(hit_every and i % hit_every == 0)}  # fmt: skip
        start = T0 / 1000 + i * 60_000
        if slack:
            # search runs beside a 3 s llm call: a cache hit there saves no run time.
            executions = [
                execution(f"r{i}", "llm", start, start + 3000),
                execution(f"r{i}", "search", start, start + 500, **fields),
            ]
            runs.append(SampleRun(f"r{i}", "succeeded", round(start * 1000),
                                  round((start + 3000) * 1000), executions))  # fmt: skip
        else:
            runs.append(chain_run(i, [("search", 500), ("llm", 1000)],
                                  fields=lambda _, n, f=fields: f if n == "search" else {}))  # fmt: skip
    ev = evidence_of(runs)
    ev.cache = {"search": CacheFact(True, 3600, "knowledge-retrieval"),
                "llm": CacheFact(False, None, "temperature 0.7")}  # fmt: skip
    return ev


def _check_repeats(f: list[Finding]) -> None:
    (finding,) = f
    # 10 distinct inputs, one run a minute, TTL an hour: each input recurs every 10 minutes
    # and its entry expires after 6 hits (hits do not extend it), so each input misses at
    # minutes k, k+70 and k+140 of the 200: 30 misses, 170 hits.
    assert finding.figures["would_be_hits"] == 170
    assert _eq(finding.impact.cost_per_1k_runs, 170 * 0.001 / 200 * 1000)
    assert _eq(finding.impact.latency_ms_per_run, 170 * 500 / 200)


@cases(
    Case("10 inputs over 200 runs", lambda: _repeats(10), True, _check_repeats),
    Case("every input new", lambda: _repeats(None), False),
    Case("already served by the cache", lambda: _repeats(10, hit_every=1), False),
    Case("repeats with slack: money, no time", lambda: _repeats(10, slack=True), True,
         lambda f: f[0].impact.latency_ms_per_run is None and f[0].impact.cost_per_1k_runs > 0),
)  # fmt: skip
def test_uncached_repeated_inputs(case: Case) -> None:
    run_case(UncachedRepeatedInputs, case)


def _model_calls(provider: str, model: str, prompt: int, completion: int) -> Evidence:
    cost = PRICES.estimate(provider, model, prompt, completion)
    fields = {"model_provider": provider, "model_name": model, "prompt_tokens": prompt,
              "completion_tokens": completion, "cost": cost}  # fmt: skip
    runs = chain(60, [("start", 5), ("classify", 600)],
                 fields=lambda _, n: fields if n == "classify" else {})  # fmt: skip
    ev = evidence_of(runs)
    ev.price = PRICES.estimate
    return ev


@cases(
    Case("gpt-4o on a short task", lambda: _model_calls("openai", "gpt-4o", 400, 10), True,
         lambda f: f[0].figures["suggested_model"] in ("gpt-4o-mini", "gpt-4.1-nano", "gpt-4.1-mini")
         and f[0].impact.cost_per_1k_runs > 0),
    Case("gpt-4o on long prompts", lambda: _model_calls("openai", "gpt-4o", 6000, 10), False),
    Case("already a small model", lambda: _model_calls("openai", "gpt-4o-mini", 400, 10), False),
    Case("unknown provider", lambda: _model_calls("acme", "acme-large", 400, 10), False),
)  # fmt: skip
def test_expensive_model_for_short_task(case: Case) -> None:
    run_case(ExpensiveModelForShortTask, case)


@cases(
    Case("8000-token prompts", lambda: _model_calls("openai", "gpt-4o", 8000, 50), True,
         lambda f: f[0].figures["prompt_cost_share"] > 0.9),
    Case("output-heavy", lambda: _model_calls("openai", "gpt-4o", 100, 900), False),
    Case("prompt-heavy but short", lambda: _model_calls("openai", "gpt-4o", 900, 20), False),
)  # fmt: skip
def test_prompt_cost_dominates(case: Case) -> None:
    run_case(PromptCostDominates, case)


# -- reliability ------------------------------------------------------------------------------


def _failing(runs: int, fail_every: int | None) -> Evidence:
    def fields(i: int, n: str) -> dict[str, Any]:
        if n == "api" and fail_every and i % fail_every == 0:
            return {"status": "failed", "error": "HTTP 503"}
        return {"node_type": "http-request"} if n == "api" else {}

    return evidence_of(chain(runs, [("start", 5), ("api", 200)], fields=fields))


@cases(
    Case("10% failures", lambda: _failing(400, 10), True,
         lambda f: _eq(f[0].figures["error_rate"], 0.1)
         and f[0].figures["top_errors"][0]["error"] == "HTTP 503"),
    Case("1% failures", lambda: _failing(400, 100), False),
    Case("7% of 30 is not enough evidence", lambda: _failing(30, 15), False),
)  # fmt: skip
def test_high_error_rate(case: Case) -> None:
    run_case(HighErrorRate, case)


def _retries(retry_every: int | None) -> Evidence:
    def fields(i: int, n: str) -> dict[str, Any]:
        if n == "api" and retry_every and i % retry_every == 0:
            return {"retry_count": 1}
        return {}

    # A retried execution took two attempts of 400 ms.
    runs = [
        chain_run(i, [("start", 5), ("api", 800 if retry_every and i % retry_every == 0 else 400)],
                  fields=fields)
        for i in range(100)
    ]  # fmt: skip
    return evidence_of(runs)


@cases(
    Case("a third retried", lambda: _retries(3), True,
         lambda f: _eq(f[0].impact.latency_ms_per_run, 34 * 400 / 100)),
    Case("no retries", lambda: _retries(None), False),
)  # fmt: skip
def test_retries_consume_time(case: Case) -> None:
    run_case(RetriesConsumeTime, case)


def _hourly(bursty: bool) -> Evidence:
    ev = evidence_of(chain(100, [("start", 5), ("api", 200)]))
    hours = []
    for h in range(48):
        failed = (20 if h in (10, 11) else 0) if bursty else (1 if h % 2 else 0)
        hours.append((T0 + h * HOUR_US, 100, failed))
    ev.hourly = {"api": hours}
    ev.nodes["api"] = replace(ev.nodes["api"], executions=4800, failed=sum(h[2] for h in hours))
    return ev


@cases(
    Case("40 failures in 2 of 48 hours", lambda: _hourly(True), True,
         lambda f: f[0].figures["share_in_worst_hours"] == 1.0),
    Case("failures spread out", lambda: _hourly(False), False),
)  # fmt: skip
def test_failures_concentrated_in_time(case: Case) -> None:
    run_case(FailuresConcentratedInTime, case)


# -- scalability ------------------------------------------------------------------------------


def _regressions(*facts: RegressionFact) -> Evidence:
    ev = evidence_of(chain(50, [("start", 5), ("rewrite", 400)]))
    ev.nodes["rewrite"] = replace(ev.nodes["rewrite"], on_critical_path_rate=1.0)
    ev.regressions = list(facts)
    return ev


_NODE_UP = RegressionFact("node_latency_mean_ms", "rewrite", T0, 400.0, 560.0, 40.0, 0.99)
_COST_UP = RegressionFact("cost_per_run", None, T0, 0.010, 0.013, 30.0, 0.98)
_SMALL = RegressionFact("latency_p50_ms", None, T0, 1000.0, 1050.0, 5.0, 0.99)


@cases(
    Case("node latency and cost rose", lambda: _regressions(_NODE_UP, _COST_UP), True,
         lambda f: {x.subject for x in f} == {"node_latency_mean_ms", "cost_per_run"}
         and _eq(f[0].impact.latency_ms_per_run, 160.0)
         and f[0].fingerprint != f[1].fingerprint),
    Case("5% is under the threshold", lambda: _regressions(_SMALL), False),
    Case("no regressions", lambda: _regressions(), False),
)  # fmt: skip
def test_rising_latency_or_cost(case: Case) -> None:
    run_case(RisingLatencyOrCost, case)


def _daily(growth_per_day: float) -> Evidence:
    rng = random.Random(3)
    ev = evidence_of(chain(50, [("start", 5), ("llm", 400)]))
    ev.daily = [
        (T0 + d * 24 * HOUR_US, 100, 100 * 1000 * (1 + growth_per_day) ** d * rng.uniform(0.97, 1.03),
         1.0)
        for d in range(14)
    ]  # fmt: skip
    return ev


@cases(
    Case("3% more tokens a day", lambda: _daily(0.03), True,
         lambda f: 40 < f[0].figures["growth_pct"] < 55),
    Case("flat", lambda: _daily(0.0), False),
)  # fmt: skip
def test_tokens_per_run_growing(case: Case) -> None:
    run_case(TokensPerRunGrowing, case)


# -- best practices ---------------------------------------------------------------------------


def _branching(temperature: float, also_read_by_llm: bool = False) -> Evidence:
    judge = {"model": {"provider": "openai", "name": "gpt-4o-mini",
                       "completion_params": {"temperature": temperature}}}  # fmt: skip
    route = {"cases": [{"case_id": "true", "conditions": [
        {"variable_selector": ["judge", "text"], "comparison_operator": "contains",
         "value": "yes"}]}]}  # fmt: skip
    answer = {"prompt_template": [{"role": "user", "text": "{{#judge.text#}}" if also_read_by_llm
                                   else "{{#start.q#}}"}]}  # fmt: skip
    graph = graph_of(
        [("start", "start", {}), ("judge", "llm", judge), ("route", "if-else", route),
         ("answer", "llm", answer)],
        [("start", "judge"), ("judge", "route"), ("route", "answer")],
    )  # fmt: skip
    return evidence_of(chain(40, [("start", 5), ("judge", 300), ("route", 2), ("answer", 900)]),
                       graph=graph)  # fmt: skip


@cases(
    Case("temperature 0.7 on a router", lambda: _branching(0.7), True,
         lambda f: f[0].node_ids == ("judge",)),
    Case("temperature 0", lambda: _branching(0.0), False),
    Case("output also read by an llm", lambda: _branching(0.7, also_read_by_llm=True), False),
    Case("no graph", lambda: evidence_of(chain(40, [("judge", 300)])), False),
)  # fmt: skip
def test_nondeterministic_branch_decision(case: Case) -> None:
    run_case(NondeterministicBranchDecision, case)


def _http(
    config: dict[str, Any], *, fail_every: int | None = 20, node_type: str = "http-request"
) -> Evidence:
    graph = graph_of([("start", "start", {}), ("api", node_type, config)], [("start", "api")])
    return evidence_of(_failing(100, fail_every).sample, graph=graph)


def _tool(provider_type: str, provider_id: str, fail_every: int | None = None) -> Evidence:
    config = {"provider_type": provider_type, "provider_id": provider_id,
              "provider_name": provider_id.rsplit("/", 1)[-1], "tool_name": "run"}  # fmt: skip
    return _http(config, fail_every=fail_every, node_type="tool")


def _real_sandbox_call(fail_every: int | None) -> Evidence:
    def failing(i: int, node_id: str) -> dict[str, Any]:
        if node_id == SANDBOX_CALL and fail_every and i % fail_every == 0:
            return {"status": "failed", "error": "HTTP 502"}
        return {}

    graph = real_graph("svcvit_runLLMCode")
    return evidence_of(graph_chain(graph, {SANDBOX_CALL: 300}, 100, fields=failing), graph=graph)


def _check_precaution(f: list[Finding]) -> None:
    (finding,) = f
    assert finding.severity == "low" and finding.impact.error_rate is None
    assert finding.figures["failed"] == 0
    assert "no failure" in finding.figures["reason"] and finding.figures["calls"]
    assert "did not fail" in finding.description


@cases(
    Case("no retry, no error strategy", lambda: _http({"method": "GET"}), True,
         lambda f: f[0].severity == "high" and _eq(f[0].figures["error_rate"], 0.05)),
    Case("retries on", lambda: _http({"retry_config": {"retry_enabled": True, "max_retries": 2}}),
         False),
    Case("fail branch", lambda: _http({"error_strategy": "fail-branch"}), False),
    Case("no failures, an outside URL: low, the reason stated",
         lambda: _http({"url": "https://api.example.com/v1/items"}, fail_every=None), True,
         lambda f: _check_precaution(f) is None
         and f[0].figures["calls"] == "api.example.com"),
    Case("no failures, a search tool (plugin)",
         lambda: _tool("builtin", "langgenius/tavily/tavily"), True, _check_precaution),
    Case("no failures, a tool that runs inside Dify (time)",
         lambda: _tool("builtin", "time"), False),
    Case("no failures, a plugin tool that runs inside Dify (json_process)",
         lambda: _tool("builtin", "langgenius/json_process/json_process"), False),
    Case("no failures, another workflow as a tool", lambda: _tool("workflow", "a1b2c3"), False),
    Case("failures of a tool that runs inside Dify",
         lambda: _tool("builtin", "time", fail_every=10), True,
         lambda f: f[0].severity == "high"),
    Case("real DSL 0.1.4 export, no failures: older than retry settings",
         lambda: _real_sandbox_call(None), False),
    Case("real DSL 0.1.4 export, 10% failures: says to upgrade first",
         lambda: _real_sandbox_call(10), True,
         lambda f: f[0].node_ids == (SANDBOX_CALL,) and f[0].figures["dsl_version"] == "0.1.4"
         and "upgrade" in f[0].action_steps[0] and _eq(f[0].figures["error_rate"], 0.1)),
)  # fmt: skip
def test_no_retry_or_error_handling(case: Case) -> None:
    run_case(NoRetryOrErrorHandling, case)


def _iteration(items: int, *, parallel: bool = False) -> Evidence:
    config = {"iterator_selector": ["start", "list"], "is_parallel": parallel}
    graph = graph_of(
        [("start", "start", {}), ("loop_each", "iteration", config),
         ("fetch", "http-request", {"url": "{{#loop_each.item#}}"}), ("end", "end", {})],
        [("start", "loop_each"), ("loop_each", "end")],
        parents={"fetch": "loop_each"},
    )  # fmt: skip
    runs = []
    for i in range(50):
        run = chain_run(i, [("start", 5), ("loop_each", items * 300.0), ("end", 5)])
        container = run.executions[1]
        for k in range(items):
            at = container.start_us / 1000 + k * 300
            run.executions.append(execution(run.run_id, "fetch", at, at + 300,
                                            parent_id=container.id, index=k))  # fmt: skip
        runs.append(run)
    return evidence_of(runs, graph=graph)


@cases(
    Case("4 items one by one", lambda: _iteration(4), True,
         lambda f: _eq(f[0].impact.latency_ms_per_run, 900.0)),
    Case("already parallel", lambda: _iteration(4, parallel=True), False),
    Case("a single item", lambda: _iteration(1), False),
)  # fmt: skip
def test_sequential_iteration(case: Case) -> None:
    run_case(SequentialIteration, case)


# -- parallelization --------------------------------------------------------------------------


def _two_llms(second_reads_first: bool, second_ms: float = 800.0) -> Evidence:
    reads = "{{#summarize.text#}}" if second_reads_first else "{{#start.doc#}}"
    graph = graph_of(
        [("start", "start", {}),
         ("summarize", "llm", {"prompt_template": [{"role": "user", "text": "{{#start.doc#}}"}]}),
         ("keywords", "llm", {"prompt_template": [{"role": "user", "text": reads}]}),
         ("end", "end", {"outputs": [{"value_selector": ["summarize", "text"]},
                                     {"value_selector": ["keywords", "text"]}]})],
        [("start", "summarize"), ("summarize", "keywords"), ("keywords", "end")],
    )  # fmt: skip
    runs = chain(
        60, [("start", 5), ("summarize", 1000), ("keywords", second_ms), ("end", 5)], gap_ms=0
    )
    return evidence_of(runs, graph=graph)


def _pair_before(reads: tuple[str, ...], a1_ms: float = 1000.0, a2_ms: float = 1000.0) -> Evidence:
    """a1 and a2 side by side after start, both drawn before b (800 ms), which reads `reads`
    (besides start): a symmetric pair when it reads neither."""
    text = " ".join(f"{{{{#{n}.text#}}}}" for n in ("start", *reads))
    prompt = {"prompt_template": [{"role": "user", "text": "{{#start.doc#}}"}]}
    graph = graph_of(
        [("start", "start", {}), ("a1", "llm", prompt), ("a2", "llm", prompt),
         ("b", "llm", {"prompt_template": [{"role": "user", "text": text}]}),
         ("end", "end", {"outputs": [{"value_selector": [n, "text"]} for n in ("a1", "a2", "b")]})],
        [("start", "a1"), ("start", "a2"), ("a1", "b"), ("a2", "b"), ("b", "end")],
    )  # fmt: skip
    runs = []
    for i in range(60):
        t = T0 / 1000 + i * 60_000
        b_at = t + 5 + max(a1_ms, a2_ms)
        executions = [
            execution(f"r{i}", "start", t, t + 5),
            execution(f"r{i}", "a1", t + 5, t + 5 + a1_ms),
            execution(f"r{i}", "a2", t + 5, t + 5 + a2_ms),
            execution(f"r{i}", "b", b_at, b_at + 800),
            execution(f"r{i}", "end", b_at + 800, b_at + 805),
        ]
        runs.append(SampleRun(f"r{i}", "succeeded", round(t * 1000), round((b_at + 805) * 1000),
                              executions))  # fmt: skip
    return evidence_of(runs, graph=graph)


@cases(
    Case("a symmetric pair before b, b reads neither: both named, b beside both",
         lambda: _pair_before(()), True,
         lambda f: len(f) == 1 and f[0].node_ids == ("a1", "a2", "b")
         and _eq(f[0].impact.latency_ms_per_run, 800.0)
         and "A1 (a1) and A2 (a2)" in f[0].title),
    Case("b reads a2 (600 ms): beside a1 only, waiting for a2",
         lambda: _pair_before(("a2",), a2_ms=600.0), True,
         lambda f: len(f) == 1 and f[0].node_ids == ("a1", "b")
         and _eq(f[0].impact.latency_ms_per_run, 1000.0 - 600.0)),
    Case("b reads both", lambda: _pair_before(("a1", "a2")), False),
)  # fmt: skip
def test_independent_nodes_in_pairs(case: Case) -> None:
    run_case(IndependentSequentialNodes, case)


@cases(
    Case("independent: side by side saves the shorter one", lambda: _two_llms(False), True,
         lambda f: f[0].node_ids == ("summarize", "keywords")
         and _eq(f[0].impact.latency_ms_per_run, 800.0)),
    Case("the second reads the first", lambda: _two_llms(True), False),
    Case("too small a saving", lambda: _two_llms(False, second_ms=50.0), False),
)  # fmt: skip
def test_independent_sequential_nodes(case: Case) -> None:
    run_case(IndependentSequentialNodes, case)


# -- every rule -------------------------------------------------------------------------------


def test_every_rule_has_an_id_category_and_explanation() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    for rule in RULES:
        assert rule.category in (
            "performance", "cost", "reliability", "scalability", "best_practices",
            "parallelization",
        )  # fmt: skip
        assert len(rule.explanation()) > 80, rule.id
    assert {rule.category for rule in RULES} == {
        "performance", "cost", "reliability", "scalability", "best_practices", "parallelization"
    }  # fmt: skip


def test_no_rule_fires_on_too_little_evidence() -> None:
    ev = _two_llms(False)
    ev.thresholds = Thresholds(min_executions=1000)
    for rule in RULES:
        assert rule().evaluate(ev) == [], rule.id


def _eq(actual: float | None, expected: float) -> bool:
    assert actual is not None and abs(actual - expected) < 1e-6 * max(1.0, abs(expected)), (
        actual,
        expected,
    )
    return True


@pytest.mark.parametrize(
    ("impact", "score", "severity"),
    [
        (Impact(latency_ms_per_run=500.0), 0.25, "high"),
        (Impact(latency_ms_per_run=500.0, cost_per_1k_runs=5.0), 0.5, "critical"),
        (Impact(error_rate=0.02), 0.08, "medium"),
        (Impact(cost_per_1k_runs=0.1), 0.01, "low"),
        (Impact(), 0.0, "low"),
    ],
)
def test_impact_score_and_severity(impact: Impact, score: float, severity: str) -> None:
    # A median run of 2 s costing 0.01: 500 ms is a quarter of it, 5 per 1k runs half.
    assert impact.score(2000.0, 0.01) == pytest.approx(score)
    assert severity_of(impact.score(2000.0, 0.01)) == severity
