"""What the caller's thread records: a run and its node executions, cheap to fill.

All of this runs on the caller's thread, inside the workflow being measured, so it only takes
`time.time_ns()` timestamps and stores plain values in slotted objects; `flowscope.sdk.wire`
turns them into wire dicts later, on the recorder's background thread.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self, TypedDict, Unpack

if TYPE_CHECKING:  # pydantic stays out of the import of the SDK
    from flowscope.schemas.runs import NodeStatus, RunStatus


class RunFields(TypedDict, total=False):
    """Optional run fields of the wire schema (`RunCreate`)."""

    workflow_version: str
    triggered_from: str
    inputs_hash: str
    total_tokens: int


class NodeFields(TypedDict, total=False):
    """Optional node execution fields of the wire schema (`NodeExecutionCreate`)."""

    predecessor_node_id: str
    input_hash: str
    iteration_id: str
    iteration_index: int
    loop_id: str
    loop_index: int
    parent_id: str
    retry_count: int


Submit = Callable[["Run", list["Node"]], None]


def _ended_by(exc: BaseException) -> Literal["failed", "stopped"]:
    # KeyboardInterrupt, asyncio cancellation and SystemExit stop work; they are not bugs.
    return "failed" if isinstance(exc, Exception) else "stopped"


def _describe(exc: BaseException) -> str:
    try:
        return f"{type(exc).__name__}: {exc}"
    except Exception:  # a broken __str__ must not replace the caller's exception
        return type(exc).__name__


class _Scoped:
    """`with` support of Node and Run: start on entry; on exit end, as failed (or stopped)
    when an exception leaves the block, which then propagates unchanged."""

    __slots__ = ()

    def start(self) -> Self:
        raise NotImplementedError

    def end(self, status: Any = "succeeded", error: str | None = None) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.end()
        else:
            self.end(_ended_by(exc), _describe(exc))


class Node(_Scoped):
    """One node execution: a context manager, or call `start()` then `end()`."""

    __slots__ = (
        "_run",
        "cached",
        "error",
        "fields",
        "finished_ns",
        "id",
        "index",
        "llm_usage",
        "looked_up",
        "node_id",
        "node_type",
        "started_ns",
        "status",
        "title",
    )

    def __init__(
        self, run: Run, node_id: str, node_type: str, title: str | None, fields: NodeFields
    ) -> None:
        self._run = run
        # ids need only be unique within the run; uuid4 would cost several microseconds.
        self.id = f"{run._id_prefix}{next(run._id_counter)}"
        self.node_id = node_id
        self.node_type = node_type
        self.title = title
        self.fields = fields
        self.index = -1
        self.started_ns = 0
        self.finished_ns = 0
        self.status: NodeStatus = "running"
        self.error: str | None = None
        self.cached = False
        self.looked_up = False
        # (model, provider, prompt, completion, total tokens, cost, currency): one slot, so
        # nodes without an LLM call pay for one assignment instead of seven.
        self.llm_usage: tuple[Any, ...] | None = None

    def start(self) -> Node:
        """Start the clock; `index` is the order of start within the run."""
        run = self._run
        with run._lock:  # the clock is read inside, so index order is start order
            self.started_ns = time.time_ns()
            self.index = len(run._nodes)
            run._nodes.append(self)
        return self

    def end(self, status: NodeStatus = "succeeded", error: str | None = None) -> None:
        """Stop the clock with this status; later calls change nothing."""
        if self.finished_ns:
            return
        if not self.started_ns:
            self.start()
        self.status = status
        self.error = error
        # Written last: the background thread reads it first to know the rest is final.
        self.finished_ns = max(time.time_ns(), self.started_ns)
        if self._run._ended:
            self._run._submit(self._run, [self])

    def usage(
        self,
        model: str,
        provider: str | None,
        prompt_tokens: int | None,
        completion_tokens: int | None,
        total_tokens: int | None = None,
        cost: float | None = None,
        currency: str = "USD",
    ) -> None:
        """The LLM call's model and tokens; called again, tokens and cost add up."""
        seen = self.llm_usage
        if seen is not None:
            prompt_tokens = _add(seen[2], prompt_tokens)
            completion_tokens = _add(seen[3], completion_tokens)
            total_tokens = _add(seen[4], total_tokens)
            cost = _add(seen[5], cost)
        self.llm_usage = (
            model,
            provider,
            prompt_tokens,
            completion_tokens,
            total_tokens,
            cost,
            currency,
        )

    def cache_hit(self, hit: bool = True) -> None:
        """Mark the node as having looked its result up in a cache: served from it (`hit`) or
        not (a miss). Analytics count hit rates over these lookups."""
        self.cached = hit
        self.looked_up = True


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    return a if b is None else a + b


class Run(_Scoped):
    """One workflow run: a context manager, or call `start()` then `end()`.

    The run is handed to the recorder once, when it ends, with every node execution started
    so far; a node that ends after its run is sent again on its own (ingestion merges it).
    """

    __slots__ = (
        "_ended",
        "_id_counter",
        "_id_prefix",
        "_lock",
        "_nodes",
        "_submit",
        "app_id",
        "error",
        "fields",
        "finished_ns",
        "id",
        "started_ns",
        "status",
        "workflow_id",
    )

    def __init__(
        self, submit: Submit, app_id: str, workflow_id: str, run_id: str | None, fields: RunFields
    ) -> None:
        self._submit = submit
        entropy = os.urandom(20).hex()  # one system call for both ids
        self.id = run_id or entropy[:32]
        self.app_id = app_id
        self.workflow_id = workflow_id
        self.fields = fields
        # Random per Run object, so a run resumed under the same run_id gets new node ids.
        self._id_prefix = entropy[32:] + "-"
        self._id_counter = itertools.count()
        self._lock = threading.Lock()
        self._nodes: list[Node] = []
        self._ended = False
        self.started_ns = 0
        self.finished_ns = 0
        self.status: RunStatus = "running"
        self.error: str | None = None

    def node(
        self, node_id: str, node_type: str, title: str | None = None, **fields: Unpack[NodeFields]
    ) -> Node:
        """A node execution of this run (use it in `with`); nest or run them concurrently."""
        return Node(self, node_id, node_type, title, fields)

    def start(self) -> Run:
        self.started_ns = time.time_ns()
        return self

    def end(self, status: RunStatus = "succeeded", error: str | None = None) -> None:
        """Finish the run (e.g. `run.end("partial-succeeded")` inside its `with`); once only."""
        if self._ended:
            return
        if not self.started_ns:
            self.start()
        self.status = status
        self.error = error
        self.finished_ns = max(time.time_ns(), self.started_ns)
        with self._lock:
            self._ended = True
            nodes = list(self._nodes)
        self._submit(self, nodes)
