"""One generation: gather the evidence, run every rule, store what they found."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection

from flowscope.advisor.gather import gather
from flowscope.advisor.lifecycle import read_recommendations, store_findings
from flowscope.advisor.merge import merge_findings
from flowscope.advisor.rules import RULES, evaluate
from flowscope.advisor.thresholds import Thresholds
from flowscope.performance.window import Window
from flowscope.runs.pricing import PriceBook
from flowscope.schemas.advisor import GenerateResult


def generate_recommendations(
    conn: Connection,
    workflow_pk: int,
    window: Window,
    *,
    thresholds: Thresholds,
    prices: PriceBook,
    default_ttls: Mapping[str, int],
    actor: str | None,
    now_us: int,
) -> GenerateResult:
    """Regenerate a workflow's recommendations over `window`.

    A general finding is folded into a more specific one on the same nodes
    (advisor.merge). Recommendations found again are updated in place; active ones of rules
    that ran are resolved when not found again, unless the window holds fewer runs than
    `min_executions` (too little evidence to say a problem went away).
    """
    evidence = gather(
        conn, workflow_pk, window, thresholds, prices=prices, default_ttls=default_ttls
    )
    findings, failed = evaluate(evidence)
    findings = merge_findings(findings)  # one recommendation per node and problem
    settled = (
        None
        if evidence.runs < thresholds.min_executions
        else {rule.id for rule in RULES} - set(failed)
    )
    public = window.public()
    outcome = store_findings(
        conn,
        workflow_pk,
        findings,
        public.model_dump(mode="json"),
        now_us,
        actor=actor,
        settled_rules=settled,
    )
    return GenerateResult(
        window=public,
        runs_in_window=evidence.runs,
        runs_sampled=len(evidence.sample),
        graph=evidence.graph is not None,
        rules_run=len(RULES) - len(failed),
        failed_rules=failed,
        created=outcome.created,
        updated=outcome.updated,
        reopened=outcome.reopened,
        resolved=outcome.resolved,
        data=read_recommendations(conn, workflow_pk),
    )
