"""A seeded, streaming generator of synthetic workflow runs (RunCreate payloads as dicts).

Runs start in time order over the `days` before `end`, denser in working hours (UTC) and on
weekdays. Each run is simulated along its workflow's DAG: a node starts a few ms after its
last predecessor finished, lasts a lognormal draw (LLM: latency + completion tokens x model
speed), and may retry, fail, fail-but-be-handled ("exception") or be a cache hit. A failure
stops the run: nodes not yet started never run, nodes in flight are "stopped" at that instant.

The planted facts (latency regression, slow node off the critical path, unpriced model, a
failing node, ...) are documented in `flowscope.demo.workflows`. Same seed and same `end`
give identical output.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from statistics import NormalDist
from typing import Any

from flowscope.demo.workflows import (
    MAX_RETRIES,
    MODEL_MS_PER_TOKEN,
    REGRESSION,
    RETRY_INTERVAL_MS,
    DemoNode,
    DemoWorkflow,
    demo_workflows,
)
from flowscope.schemas.runs import NodeExecutionCreate

_DAY = 86_400.0
# Runs start no later than this before `end`, so (nearly) every run has finished by `end`.
_END_MARGIN_S = 600.0
# Relative traffic by UTC hour: quiet nights, a morning ramp, a working-day plateau.
_HOURLY = (
    0.15, 0.12, 0.1, 0.1, 0.12, 0.18, 0.3, 0.55, 0.85, 1.0, 1.0, 0.95,
    0.9, 0.95, 1.0, 1.0, 0.9, 0.75, 0.55, 0.45, 0.38, 0.3, 0.24, 0.18,
)  # fmt: skip
_WEEKEND = 0.45
_TRIGGERS = (("service-api", 0.72), ("webapp", 0.86), ("app-run", 0.94), ("debugging", 1.0))
_ERRORS = {
    "llm": "[{provider}] Error code: 429 - rate limit reached for {model}",
    "http-request": "HTTP request failed: 503 Service Unavailable",
    "knowledge-retrieval": "Vector store query failed: connection reset by peer",
    "code": "KeyError: 'customer_id'",
    "tool": "Tool invocation failed: upstream returned 502 Bad Gateway",
}

# Standard normal quantiles at i/1024 (ends clipped near +-3.9): a table lookup with linear
# interpolation draws a normal in half the time of random.gauss, and the tails are capped anyway.
_QUANTILES = 1024
_Q = tuple(
    NormalDist().inv_cdf(min(max(i / _QUANTILES, 0.05 / _QUANTILES), 1 - 0.05 / _QUANTILES))
    for i in range(_QUANTILES + 1)
)
_DQ = tuple(_Q[i + 1] - _Q[i] for i in range(_QUANTILES))


def _normal(rng: random.Random) -> float:
    x = rng.random() * _QUANTILES
    i = int(x)
    return _Q[i] + _DQ[i] * (x - i)


@dataclass(slots=True)
class _Step:
    """A DemoNode compiled for the inner loop: indices instead of ids, flat parameters."""

    node_id: str
    template: dict[str, Any]  # the payload's constant fields, copied per execution
    preds: tuple[int, ...]
    mu: float
    sigma: float
    tail: float
    timeout_ms: float
    ms_per_token: float
    prompt_tokens: int
    completion_tokens: int
    # Outcome thresholds on one uniform draw: failed < exception < retried.
    fail: float
    exception: float
    retry: float
    has_retries: bool
    error: str
    pool: tuple[tuple[str, int, int], ...]  # (input_hash, prompt_tokens, completion_tokens)
    seen: set[int]
    cache_rate: float
    branches: tuple[tuple[int, float], ...]  # if-else: (successor index, cumulative weight)
    children: tuple[_Step, ...]
    items: tuple[int, int]
    regressed: bool


@dataclass(frozen=True, slots=True)
class _Plan:
    workflow: DemoWorkflow
    steps: tuple[_Step, ...]
    run_pool: tuple[str, ...]


def _pool(workflow: DemoWorkflow, node: DemoNode) -> tuple[tuple[str, int, int], ...]:
    # Seeded by name, not by the run seed: the same input always costs the same tokens.
    rng = random.Random(f"{workflow.workflow_id}/{node.node_id}")
    entries = []
    for k in range(node.input_pool):
        digest = hashlib.sha256(f"{workflow.workflow_id}/{node.node_id}/{k}".encode()).hexdigest()
        prompt = int(node.prompt_tokens * rng.lognormvariate(0.0, 0.35))
        completion = max(1, int(node.completion_tokens * rng.lognormvariate(0.0, 0.5)))
        entries.append((digest, prompt, completion))
    return tuple(entries)


def _template(node: DemoNode) -> dict[str, Any]:
    # Every NodeExecutionCreate field in schema order; cost stays None: the server estimates it.
    template: dict[str, Any] = dict.fromkeys(NodeExecutionCreate.__annotations__)
    template.update(
        node_id=node.node_id,
        node_type=node.node_type,
        title=node.title,
        status="succeeded",
        model_provider=node.model_provider,
        model_name=node.model_name,
        currency="USD",
        cache_hit=False,
        retry_count=0,
    )
    return template


def _compile_step(
    workflow: DemoWorkflow, node: DemoNode, preds: tuple[int, ...], index: dict[str, int]
) -> _Step:
    total = sum(weight for _, weight in node.branches)
    branches, cumulative = [], 0.0
    for target, weight in node.branches:
        cumulative += weight / total
        branches.append((index[target], cumulative))
    error = _ERRORS.get(node.node_type, "Node execution failed")
    return _Step(
        node_id=node.node_id,
        template=_template(node),
        preds=preds,
        mu=math.log(node.median_ms),
        sigma=node.sigma,
        tail=node.tail,
        timeout_ms=node.timeout_ms,
        ms_per_token=MODEL_MS_PER_TOKEN.get(node.model_name or "", 0.0),
        prompt_tokens=node.prompt_tokens,
        completion_tokens=node.completion_tokens,
        fail=node.fail_rate,
        exception=node.fail_rate + node.exception_rate,
        retry=node.fail_rate + node.exception_rate + node.retry_rate,
        has_retries=node.retry_rate > 0,
        error=error.format(provider=node.model_provider, model=node.model_name),
        pool=_pool(workflow, node),
        seen=set(),
        cache_rate=node.cache_rate,
        branches=tuple(branches),
        children=tuple(_compile_step(workflow, c, (), index) for c in node.children),
        items=node.items,
        regressed=(workflow.workflow_id, node.node_id)
        == (REGRESSION.workflow_id, REGRESSION.node_id),
    )


def _compile(workflow: DemoWorkflow) -> _Plan:
    index = {node_id: i for i, node_id in enumerate(workflow.order)}
    steps = tuple(
        _compile_step(
            workflow,
            workflow.node(node_id),
            tuple(index[p] for p in workflow.predecessors(node_id)),
            index,
        )
        for node_id in workflow.order
    )
    run_pool = tuple(
        hashlib.sha256(f"{workflow.workflow_id}/inputs/{k}".encode()).hexdigest()
        for k in range(workflow.input_pool)
    )
    return _Plan(workflow, steps, run_pool)


def _start_times(rng: random.Random, n: int, start: float, stop: float) -> Iterator[float]:
    """`n` ascending epoch seconds in [start, stop), distributed by the daily traffic cycle.

    Sorted uniforms are drawn largest first (each is the maximum of the ones left) and then
    mapped through the cumulative traffic curve, so nothing is held in memory.
    """
    bounds, cumulative, t = [start], [0.0], start
    while t < stop:
        nxt = min(stop, (math.floor(t / 3600.0) + 1) * 3600.0)
        moment = datetime.fromtimestamp(t, UTC)
        rate = _HOURLY[moment.hour] * (_WEEKEND if moment.weekday() >= 5 else 1.0)
        cumulative.append(cumulative[-1] + rate * (nxt - t))
        bounds.append(nxt)
        t = nxt
    total = cumulative[-1]
    last = len(bounds) - 2
    u, b = 1.0, 0
    for left in range(n, 0, -1):
        u *= (1.0 - rng.random()) ** (1.0 / left)
        target = (1.0 - u) * total
        while b < last and cumulative[b + 1] < target:
            b += 1
        width = cumulative[b + 1] - cumulative[b]
        frac = (target - cumulative[b]) / width if width > 0 else 0.0
        yield bounds[b] + min(frac, 1.0) * (bounds[b + 1] - bounds[b])


def _pick_branch(branches: tuple[tuple[int, float], ...], r: float) -> int:
    for target, cumulative in branches:
        if r < cumulative:
            return target
    return branches[-1][0]  # rounding can leave the last cumulative weight just below 1


class _Simulator:
    """Simulates one run at a time; times stay float epoch seconds until `_finalise`."""

    def __init__(self, rng: random.Random, regression_from: float) -> None:
        self.rng = rng
        self.regression_from = regression_from
        self.prefix = ""
        self.seq = 0
        self.failed = self.excepted = False

    def attempt(self, step: _Step, start: float, slow: bool) -> dict[str, Any]:
        """One node execution from `start`: duration, outcome, tokens and input hash."""
        rng = self.rng
        d = step.template.copy()
        # Execution ids share the run id's random bits and count up: unique, and cheap.
        d["id"] = f"{self.prefix}{self.seq:012x}"
        self.seq += 1
        prompt = completion = 0
        cache = False
        if step.pool:
            k = int(len(step.pool) * rng.random() ** 2.2)  # skewed: a few inputs dominate
            d["input_hash"], prompt, completion = step.pool[k]
            if k in step.seen:
                cache = step.cache_rate > 0 and rng.random() < step.cache_rate
            else:
                step.seen.add(k)
        else:
            d["input_hash"] = rng.getrandbits(256).to_bytes(32).hex()
            if step.prompt_tokens:
                prompt = int(step.prompt_tokens * math.exp(0.35 * _normal(rng)))
                completion = max(1, int(step.completion_tokens * math.exp(0.5 * _normal(rng))))
        if step.cache_rate > 0:
            d["cache_lookup"] = True
        if cache:
            ms = 1.0 + 4.0 * rng.random()
            d["cache_hit"] = True
            if step.prompt_tokens:
                d["prompt_tokens"] = d["completion_tokens"] = d["total_tokens"] = 0
        else:
            ms = math.exp(step.mu + step.sigma * _normal(rng))
            if step.tail and rng.random() < step.tail:
                ms = min(step.timeout_ms, ms * rng.paretovariate(1.2))
            ms += completion * step.ms_per_token
            if slow:
                ms *= REGRESSION.factor
            r = rng.random()
            retries = 0
            if r < step.fail:
                # Failed calls report no usage; nodes with retries gave up after the last one.
                d["status"], d["error"] = "failed", step.error
                retries = MAX_RETRIES if step.has_retries else 0
                ms *= 0.3 + 0.7 * rng.random()
                self.failed = True
            elif r < step.exception:
                d["status"], d["error"] = "exception", step.error
                self.excepted = True
            else:
                if r < step.retry:
                    retries = 1 if rng.random() < 0.75 else 2
                if step.prompt_tokens:
                    d["prompt_tokens"], d["completion_tokens"] = prompt, completion
                    d["total_tokens"] = prompt + completion
            if retries:
                # Each earlier attempt ran part of the way, then the engine waited to retry.
                d["retry_count"] = retries
                ms += retries * (RETRY_INTERVAL_MS + 0.5 * ms)
        d["started_at"] = start
        d["finished_at"] = start + ms / 1000.0
        return d

    def run(self, plan: _Plan, t0: float, run_id: str) -> list[dict[str, Any]]:
        """Every node execution of one run, before truncation at its first failure."""
        rng = self.rng
        self.prefix, self.seq = run_id[:24], 0
        self.failed = self.excepted = False
        slow = t0 >= self.regression_from
        steps = plan.steps
        finish: list[float] = [-1.0] * len(steps)  # -1: did not run
        chosen: list[int] = [-1] * len(steps)  # if-else: the successor taken
        nodes: list[dict[str, Any]] = []
        for i, step in enumerate(steps):
            pred = -1
            if step.preds:
                ready = -1.0
                for p in step.preds:
                    f = finish[p]
                    if f > ready and (chosen[p] < 0 or chosen[p] == i):
                        ready, pred = f, p
                if pred < 0:
                    continue  # every way in was skipped or not taken: the node does not run
                start = ready + 0.002 + 0.015 * rng.random()  # the engine's scheduling gap
            else:
                start = t0
            d = self.attempt(step, start, slow and step.regressed)
            if pred >= 0:
                d["predecessor_node_id"] = steps[pred].node_id
            nodes.append(d)
            if step.children:
                self.iterate(step, d, nodes)
            if step.branches:
                chosen[i] = _pick_branch(step.branches, rng.random())
            finish[i] = d["finished_at"]
        return nodes

    def iterate(self, step: _Step, container: dict[str, Any], nodes: list[dict[str, Any]]) -> None:
        """Run the child chain once per item, one item after the other, inside the container."""
        rng = self.rng
        overhead = container["finished_at"] - container["started_at"]
        cursor = container["started_at"] + 0.001
        pred: str | None = None
        for item in range(rng.randint(*step.items)):
            for child in step.children:
                d = self.attempt(child, cursor + 0.001 + 0.004 * rng.random(), False)
                d["predecessor_node_id"] = pred
                d["iteration_id"] = step.node_id
                d["iteration_index"] = item
                d["parent_id"] = container["id"]
                nodes.append(d)
                cursor, pred = d["finished_at"], child.node_id
                if d["status"] == "failed":
                    container["status"] = "failed"
                    container["error"] = f"iteration item {item}: {d['error']}"
                    container["finished_at"] = cursor + 0.002
                    return
        container["finished_at"] = cursor + 0.001 + overhead


def _truncate(nodes: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Cut a failed run at its first top-level failure and return that node execution."""
    first: dict[str, Any] | None = None
    for d in nodes:
        # A failed child always fails its container, which counts instead.
        if (
            d["status"] == "failed"
            and d["iteration_id"] is None
            and (first is None or d["finished_at"] < first["finished_at"])
        ):
            first = d
    if first is None:
        return None
    cut = first["finished_at"]
    kept = []
    for d in nodes:
        if d["started_at"] > cut:
            continue  # the run was over before this node could start
        if d is not first and d["finished_at"] > cut:
            # In flight when the run failed: the engine cancels it.
            d["finished_at"], d["status"], d["error"] = cut, "stopped", None
            d["prompt_tokens"] = d["completion_tokens"] = d["total_tokens"] = None
        kept.append(d)
    nodes[:] = kept
    return first


def _by_start(d: dict[str, Any]) -> float:
    return d["started_at"]  # type: ignore[no-any-return]


def _finalise(nodes: list[dict[str, Any]]) -> tuple[float, int]:
    """Number executions in start order, turn times into datetimes; (last finish, tokens)."""
    nodes.sort(key=_by_start)  # stable: ties keep the order of scheduling
    fromts = datetime.fromtimestamp
    last, tokens = 0.0, 0
    for index, d in enumerate(nodes, 1):
        start, finish = d["started_at"], d["finished_at"]
        d["index"] = index
        d["started_at"] = fromts(start, UTC)
        d["finished_at"] = fromts(finish, UTC)
        d["elapsed_ms"] = round((finish - start) * 1e6) / 1000.0  # round(x, 3) is 3x slower
        if finish > last:
            last = finish
        if d["total_tokens"]:
            tokens += d["total_tokens"]
    return last, tokens


def _as_utc(end: datetime | None) -> datetime:
    if end is None:
        return datetime.now(UTC)
    return end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)


def generate_runs(
    *, runs: int, seed: int = 42, end: datetime | None = None, days: int = 30
) -> Iterator[dict[str, Any]]:
    """Yield `runs` RunCreate payloads (plain dicts) in start order over `days` before `end`.

    `end` defaults to now; a naive `end` is read as UTC. Memory stays flat for any `runs`.

    >>> run = next(generate_runs(runs=1, end=datetime(2026, 1, 1, tzinfo=UTC)))
    >>> run["status"], len(run["node_executions"]) >= 10
    ('succeeded', True)
    """
    if runs < 0:
        raise ValueError("runs must be >= 0")
    if days <= 0:
        raise ValueError("days must be > 0")
    end_ts = _as_utc(end).timestamp()
    start_ts = end_ts - days * _DAY
    stop_ts = max(start_ts + 1.0, end_ts - _END_MARGIN_S)
    rng = random.Random(seed)
    # A separate stream for the clock, so editing a workflow does not move every start time.
    clock = random.Random(f"flowscope-demo/{seed}/clock")
    plans = [_compile(w) for w in demo_workflows()]
    total_weight = sum(plan.workflow.weight for plan in plans)
    cumulative, acc = [], 0.0
    for plan in plans:
        acc += plan.workflow.weight / total_weight
        cumulative.append(acc)
    switches = [start_ts + p.workflow.version_switch * (stop_ts - start_ts) for p in plans]
    sim = _Simulator(rng, end_ts - REGRESSION.starts_days_before_end * _DAY)
    fromts = datetime.fromtimestamp

    for t0 in _start_times(clock, runs, start_ts, stop_ts):
        r = rng.random()
        k = next((j for j, c in enumerate(cumulative) if r < c), len(plans) - 1)
        plan = plans[k]
        workflow = plan.workflow
        run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        nodes = sim.run(plan, t0, run_id)
        failure = _truncate(nodes) if sim.failed else None
        finished, tokens = _finalise(nodes)
        if failure is not None:
            status, error = "failed", failure["error"]
        else:
            status, error = ("partial-succeeded" if sim.excepted else "succeeded"), None
        t = rng.random()
        if plan.run_pool:
            inputs_hash = plan.run_pool[int(len(plan.run_pool) * rng.random() ** 2.0)]
        else:
            inputs_hash = rng.getrandbits(256).to_bytes(32).hex()
        yield {
            "id": run_id,
            "app_id": workflow.app_id,
            "workflow_id": workflow.workflow_id,
            "workflow_version": "v2" if t0 >= switches[k] else "v1",
            "status": status,
            "started_at": fromts(t0, UTC),
            "finished_at": fromts(finished, UTC),
            "elapsed_ms": round((finished - t0) * 1e6) / 1000.0,
            "error": error,
            "triggered_from": next(name for name, c in _TRIGGERS if t < c),
            "inputs_hash": inputs_hash,
            "total_tokens": tokens,
            "node_executions": nodes,
        }


def generate_batches(
    *,
    runs: int,
    batch_size: int = 100,
    seed: int = 42,
    end: datetime | None = None,
    days: int = 30,
) -> Iterator[list[dict[str, Any]]]:
    """`generate_runs` in lists of `batch_size` (the last one may be shorter)."""
    if batch_size <= 0:
        raise ValueError("batch_size must be > 0")
    batch: list[dict[str, Any]] = []
    for run in generate_runs(runs=runs, seed=seed, end=end, days=days):
        batch.append(run)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch
