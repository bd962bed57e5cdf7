"""Stored recommendations: generated idempotently by fingerprint, resolved when their
condition no longer holds, dismissed with who, when and why, and an audit trail of each."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from flowscope.advisor.rules import SEVERITIES, Finding
from flowscope.schemas.advisor import (
    RecommendationDetail,
    RecommendationEventPublic,
    RecommendationPublic,
)
from flowscope.store.tables import Recommendation, RecommendationEvent
from flowscope.timeutil import from_us, maybe_from_us

_RECS = Recommendation.__table__
REOPEN_GROWTH = 1.5
"""A dismissed recommendation comes back when its impact score grows by half or more."""


@dataclass(frozen=True, slots=True)
class Outcome:
    created: int = 0
    updated: int = 0
    reopened: int = 0
    resolved: int = 0


def store_findings(
    conn: Connection,
    workflow_pk: int,
    findings: Sequence[Finding],
    window: dict[str, Any],
    now_us: int,
    *,
    actor: str | None,
    settled_rules: Iterable[str] | None,
) -> Outcome:
    """Upsert the findings by fingerprint. Active recommendations of `settled_rules` (the
    rules that ran and had enough evidence) that were not found again become resolved (as
    merged when a finding took them in, advisor.merge); None settles no rule (nothing is
    resolved)."""
    existing = {
        row.fingerprint: row
        for row in conn.execute(
            select(_RECS).where(Recommendation.workflow_pk == workflow_pk)
        ).all()
    }
    created = updated = reopened = resolved = 0
    seen: set[str] = set()
    for finding in findings:
        fingerprint = finding.fingerprint
        if fingerprint in seen:
            continue
        seen.add(fingerprint)
        values = _values(finding, window, now_us)
        row = existing.get(fingerprint)
        if row is None:
            rec_id = conn.execute(
                insert(Recommendation)
                .values(workflow_pk=workflow_pk, fingerprint=fingerprint, status="active",
                        created_at_us=now_us, **values)
                .returning(Recommendation.id)
            ).scalar_one()  # fmt: skip
            _event(conn, rec_id, now_us, "created", actor, finding.title)
            created += 1
            continue
        changes: dict[str, Any] = dict(values)
        if row.status == "resolved":
            changes.update(status="active", resolved_at_us=None)
            _event(conn, row.id, now_us, "reopened", actor, "the condition holds again")
            reopened += 1
        elif row.status == "dismissed":
            before = row.dismissed_impact_score or 0.0
            if finding.impact_score > before and finding.impact_score >= REOPEN_GROWTH * before:
                changes.update(status="active", dismissed_at_us=None, dismissed_by=None,
                               dismiss_reason=None, dismissed_impact_score=None)  # fmt: skip
                grew = f"impact score grew from {before:.4g} to {finding.impact_score:.4g}"
                _event(conn, row.id, now_us, "reopened", actor, grew)
                reopened += 1
        elif row.severity != finding.severity or _moved(row.impact_score, finding.impact_score):
            _event(conn, row.id, now_us, "updated", actor,
                   f"severity {row.severity} -> {finding.severity}, impact score "
                   f"{row.impact_score:.4g} -> {finding.impact_score:.4g}")  # fmt: skip
            updated += 1
        conn.execute(update(Recommendation).where(Recommendation.id == row.id).values(**changes))
    settled = set(settled_rules or ())
    merged_into = {fp: f for f in findings for fp in f.folded}
    for fingerprint, row in existing.items():
        if fingerprint in seen or row.status != "active" or row.rule_id not in settled:
            continue
        conn.execute(
            update(Recommendation)
            .where(Recommendation.id == row.id)
            .values(status="resolved", resolved_at_us=now_us, updated_at_us=now_us)
        )
        taker = merged_into.get(fingerprint)
        why = (
            "the condition no longer holds"
            if taker is None
            else f"merged into {taker.rule_id} on the same node"
            + ("s" if len(taker.node_ids) > 1 else "")
        )
        _event(conn, row.id, now_us, "resolved", actor, why)
        resolved += 1
    return Outcome(created, updated, reopened, resolved)


def dismiss(
    conn: Connection,
    workflow_pk: int,
    recommendation_id: int,
    *,
    actor: str,
    reason: str | None,
    now_us: int,
) -> RecommendationDetail | None:
    """Dismiss a recommendation (again: the new reason replaces the old); None if the
    workflow has no such recommendation."""
    row = _row(conn, workflow_pk, recommendation_id)
    if row is None:
        return None
    conn.execute(
        update(Recommendation)
        .where(Recommendation.id == row.id)
        .values(status="dismissed", dismissed_at_us=now_us, dismissed_by=actor,
                dismiss_reason=reason, dismissed_impact_score=row.impact_score,
                updated_at_us=now_us)
    )  # fmt: skip
    _event(conn, row.id, now_us, "dismissed", actor, reason)
    return read_recommendation(conn, workflow_pk, recommendation_id)


def read_recommendations(
    conn: Connection,
    workflow_pk: int,
    *,
    statuses: Sequence[str] = ("active",),
    category: str | None = None,
    severity: str | None = None,
) -> list[RecommendationPublic]:
    """Ordered by impact score (largest first), then severity, then id."""
    query = select(_RECS).where(
        Recommendation.workflow_pk == workflow_pk, Recommendation.status.in_(statuses)
    )
    if category is not None:
        query = query.where(Recommendation.category == category)
    if severity is not None:
        query = query.where(Recommendation.severity == severity)
    rows = list(conn.execute(query).all())
    rows.sort(key=lambda r: (-r.impact_score, SEVERITIES.index(r.severity), r.id))
    return [_public(r) for r in rows]


def read_recommendation(
    conn: Connection, workflow_pk: int, recommendation_id: int
) -> RecommendationDetail | None:
    row = _row(conn, workflow_pk, recommendation_id)
    if row is None:
        return None
    events = conn.execute(
        select(RecommendationEvent.__table__)
        .where(RecommendationEvent.recommendation_id == row.id)
        .order_by(RecommendationEvent.id)
    ).all()
    history = [
        RecommendationEventPublic(
            at=from_us(e.at_us),
            event=e.event,
            actor=e.actor,
            detail=e.detail,  # type: ignore[arg-type]
        )
        for e in events
    ]
    return RecommendationDetail(**_public(row).model_dump(), history=history)


def _row(conn: Connection, workflow_pk: int, recommendation_id: int) -> Any:
    return conn.execute(
        select(_RECS).where(
            Recommendation.id == recommendation_id, Recommendation.workflow_pk == workflow_pk
        )
    ).first()


def _values(finding: Finding, window: dict[str, Any], now_us: int) -> dict[str, Any]:
    impact = asdict(finding.impact)  # rounded when the rule made the finding
    evidence = {"figures": finding.figures, "window": window, "sample_size": finding.sample_size}
    return {
        "rule_id": finding.rule_id,
        "category": finding.category,
        "severity": finding.severity,
        "confidence": finding.confidence,
        "title": finding.title,
        "description": finding.description,
        "node_ids": _json(list(finding.node_ids)),
        "evidence": _json(evidence),
        "estimated_impact": _json(impact),
        "impact_score": finding.impact_score,
        "action_steps": _json(list(finding.action_steps)),
        "updated_at_us": now_us,
    }


def _public(row: Any) -> RecommendationPublic:
    return RecommendationPublic(
        id=row.id,
        category=row.category,
        severity=row.severity,
        rule_id=row.rule_id,
        title=row.title,
        description=row.description,
        node_ids=orjson.loads(row.node_ids),
        evidence=orjson.loads(row.evidence),
        estimated_impact=orjson.loads(row.estimated_impact),
        impact_score=row.impact_score,
        confidence=row.confidence,
        action_steps=orjson.loads(row.action_steps),
        status=row.status,
        fingerprint=row.fingerprint,
        created_at=from_us(row.created_at_us),
        updated_at=from_us(row.updated_at_us),
        resolved_at=maybe_from_us(row.resolved_at_us),
        dismissed_at=maybe_from_us(row.dismissed_at_us),
        dismissed_by=row.dismissed_by,
        dismiss_reason=row.dismiss_reason,
    )


def _event(
    conn: Connection, rec_id: int, now_us: int, event: str, actor: str | None, detail: str | None
) -> None:
    conn.execute(
        insert(RecommendationEvent).values(
            recommendation_id=rec_id, at_us=now_us, event=event, actor=actor, detail=detail
        )
    )


def _moved(before: float, after: float) -> bool:
    return abs(after - before) > 0.1 * max(abs(before), 1e-9)


def _json(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
