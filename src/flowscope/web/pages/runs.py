"""A workflow's runs, and one run's waterfall with its critical path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, get_args
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import Engine

from flowscope import catalog
from flowscope.appstate import DbEngine
from flowscope.performance.run_path import run_critical_path
from flowscope.runs.read import BadCursor, read_run, read_runs
from flowscope.schemas.common import Page
from flowscope.schemas.performance import RunCriticalPath
from flowscope.schemas.runs import NodeExecutionPublic, RunPublic, RunStatus, RunSummaryPublic
from flowscope.store.engine import read_transaction
from flowscope.timeutil import to_us
from flowscope.web.svg.waterfall import Bar, waterfall
from flowscope.web.templating import duration, templates
from flowscope.web.viewer import PageNotFound, Viewer, render_error
from flowscope.web.window import WindowChoice, choose_window

router = APIRouter(include_in_schema=False)
Choice = Annotated[WindowChoice, Depends(choose_window)]

PAGE_SIZE = 50
STATUSES: tuple[str, ...] = get_args(RunStatus)


@dataclass(frozen=True, slots=True)
class RunsListing:
    versions: list[str]
    page: Page[RunSummaryPublic]


@router.get("/apps/{app_id}/workflows/{workflow_id}/runs", response_class=HTMLResponse)
async def runs_page(
    request: Request,
    app_id: str,
    workflow_id: str,
    viewer: Viewer,
    engine: DbEngine,
    choice: Choice,
    status: str = "",
    version: str = "",
    cursor: str = "",
) -> Response:
    status = status if status in STATUSES else ""
    try:
        listing = await run_in_threadpool(
            _read_listing, engine, viewer.principal.tenant_id, app_id, workflow_id, choice,
            status, version, cursor,
        )  # fmt: skip
    except BadCursor:
        return render_error(
            request, 400, "This page link is not valid; start again from the newest runs."
        )
    if listing is None:
        raise PageNotFound(f"There is no workflow {workflow_id!r} in app {app_id!r}.")
    path = f"/apps/{quote(app_id, safe='')}/workflows/{quote(workflow_id, safe='')}/runs"
    filters = {k: v for k, v in (("status", status), ("version", version)) if v}
    query = "&".join(q for q in (choice.query, urlencode(filters)) if q)
    next_cursor = listing.page.next_cursor
    versions = listing.versions
    if version and version not in versions:
        versions = [*versions, version]  # the select still shows what the URL asks for
    context = {
        "viewer": viewer,
        "choice": choice,
        "app_id": app_id,
        "workflow_id": workflow_id,
        "runs": listing.page.data,
        "statuses": STATUSES,
        "versions": list(reversed(versions)),  # newest first
        "status": status,
        "version": version,
        "filtered": bool(filters),
        "keep": filters,  # the window selector keeps the filters
        "paged": bool(cursor),
        "first_url": f"{path}?{query}",
        "next_url": f"{path}?{query}&{urlencode({'cursor': next_cursor})}" if next_cursor else None,
        # An empty window offers the longest preset, filters kept.
        "wider_url": None
        if choice.name == "30d"
        else f"{path}?{urlencode({'window': '30d'} | filters)}",
    }
    return templates.TemplateResponse(request, "runs.html", context)


def _read_listing(
    engine: Engine,
    tenant_id: int,
    app_id: str,
    workflow_id: str,
    choice: WindowChoice,
    status: str,
    version: str,
    cursor: str,
) -> RunsListing | None:
    window = choice.window
    with read_transaction(engine) as conn:
        workflow_pk = catalog.read_workflow_pk(conn, tenant_id, app_id, workflow_id)
        if workflow_pk is None:
            return None
        versions = catalog.read_versions(conn, workflow_pk)
        page = read_runs(
            conn,
            workflow_pk,
            status=status or None,
            workflow_version=version or None,
            start_us=window.start_us,
            end_us=window.end_us,
            limit=PAGE_SIZE,
            cursor=cursor or None,
        )
    return RunsListing(versions, page)


# One run


@dataclass(frozen=True, slots=True)
class TimelineRow:
    """A node execution placed in the run: offsets from the run's start, nesting depth, and
    its slack when the critical path covers it (finished executions)."""

    node: NodeExecutionPublic
    depth: int
    start_ms: float
    end_ms: float | None  # None while it runs
    slack_ms: float | None
    critical: bool

    @property
    def label(self) -> str:
        name = self.node.title or self.node.node_id
        index = self.node.iteration_index
        if index is None:
            index = self.node.loop_index
        return name if index is None else f"[{index}] {name}"

    @property
    def start_text(self) -> str:
        return offset(self.start_ms)

    @property
    def duration_ms(self) -> float | None:
        if self.node.elapsed_ms is not None:
            return self.node.elapsed_ms
        return None if self.end_ms is None else self.end_ms - self.start_ms


def offset(ms: float) -> str:
    """A time from the run's start: seconds beyond one (never minutes, which would blur
    neighbours together), so "66.40 s" and "66.52 s" stay apart."""
    if ms == 0:
        return "0"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def timeline(run: RunPublic, path: RunCriticalPath) -> tuple[list[TimelineRow], float]:
    """The run's node executions in start order, each container followed by what ran
    inside it (indented); and the span of the run in ms."""
    nodes = run.node_executions
    ids = {n.id for n in nodes}
    roots: list[NodeExecutionPublic] = []
    children: dict[str, list[NodeExecutionPublic]] = {}
    for n in nodes:  # read_run orders them by start
        if n.parent_id is not None and n.parent_id in ids and n.parent_id != n.id:
            children.setdefault(n.parent_id, []).append(n)
        else:
            roots.append(n)
    origin = min([to_us(run.started_at), *(to_us(n.started_at) for n in nodes)])
    slack: dict[str, float | None] = {s.id: s.slack_ms for s in path.steps}
    slack.update((c.id, c.slack_ms) for s in path.steps for c in s.children)
    critical = set(path.critical_path)

    def ms(moment_us: int) -> float:
        return (moment_us - origin) / 1000.0

    rows: list[TimelineRow] = []
    seen: set[str] = set()
    # Depth first without recursion; executions in a parent cycle come last, unnested.
    for top in [*roots, *nodes]:
        stack = [(top, 0)]
        while stack:
            n, depth = stack.pop()
            if n.id in seen:
                continue
            seen.add(n.id)
            rows.append(
                TimelineRow(
                    node=n,
                    depth=depth,
                    start_ms=ms(to_us(n.started_at)),
                    end_ms=None if n.finished_at is None else ms(to_us(n.finished_at)),
                    slack_ms=slack.get(n.id),
                    critical=n.id in critical,
                )
            )
            stack.extend((c, depth + 1) for c in reversed(children.get(n.id, ())))
    ends = [r.end_ms if r.end_ms is not None else r.start_ms for r in rows]
    run_end = None if run.finished_at is None else ms(to_us(run.finished_at))
    span = max([*ends, run_end or 0.0, 0.0])
    return rows, span


def _chart(run: RunPublic, path: RunCriticalPath, rows: list[TimelineRow], span: float) -> str:
    names = {r.node.id: r.node.title or r.node.node_id for r in rows}
    bars = []
    for r in rows:
        hover = [r.label, r.node.node_type, r.node.status, f"starts at {r.start_text}"]
        hover.append(f"takes {duration(r.duration_ms)}" if r.end_ms is not None else "running")
        if r.critical:
            hover.append("on the critical path")
        elif r.slack_ms is not None:
            hover.append(f"slack {duration(r.slack_ms)}")
        bars.append(
            Bar(
                id=r.node.id,
                label=r.label,
                depth=r.depth,
                start_ms=r.start_ms,
                end_ms=r.end_ms,
                status=r.node.status,
                critical=r.critical,
                hover=" · ".join(hover),
            )
        )
    if path.critical_path:
        chain = " → ".join(names.get(i, i) for i in path.critical_path)
        summary = f"Critical path ({duration(path.critical_path_ms)}): {chain}."
    else:
        summary = "No critical path: no top-level node execution has finished."
    description = (
        f"{summary} Bars are node executions on an axis of time from the run's start; "
        "the table below lists the same executions with their figures."
    )
    title = f"Waterfall of run {run.id}: {len(rows)} node executions over {duration(span)}"
    return waterfall(bars, span_ms=span, title=title, description=description)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(
    request: Request, run_id: str, viewer: Viewer, engine: DbEngine, choice: Choice
) -> Response:
    found = await run_in_threadpool(_read_run, engine, viewer.principal.tenant_id, run_id)
    if found is None:
        raise PageNotFound(f"There is no run {run_id!r} in this tenant.")
    run, path = found
    rows, span = timeline(run, path)
    context = {
        "viewer": viewer,
        # The window the viewer came from, kept in the links back (no selector on this page).
        "window_query": choice.query,
        "run": run,
        "path": path,
        "rows": rows,
        "chart": _chart(run, path, rows, span) if rows else None,
        "failed_nodes": sum(1 for r in rows if r.node.status in ("failed", "exception")),
    }
    return templates.TemplateResponse(request, "run.html", context)


def _read_run(
    engine: Engine, tenant_id: int, run_id: str
) -> tuple[RunPublic, RunCriticalPath] | None:
    with read_transaction(engine) as conn:
        run = read_run(conn, tenant_id, run_id)
    if run is None:
        return None
    return run, run_critical_path(run)
