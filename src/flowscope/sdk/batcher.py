"""The bounded queue between callers and the background thread that batches, sends and spools.

Callers only append to a deque under a lock (never waiting on I/O): when the queue is full the
run is dropped and counted. One daemon thread wakes every `interval` seconds, or sooner when a
batch's worth is waiting, converts the queued runs to wire dicts, and hands batches to the
transport. What the transport cannot deliver now goes to the spool; spooled batches are
replayed oldest first at start, after each successful send, on flush, and every
`retry_interval` seconds. While the destination is failing, fresh batches go straight to the
spool for `retry_interval` seconds instead of each waiting out the transport's retries, so
an outage never slows the thread down enough to fill the queue.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from flowscope.sdk.records import Node, Run
from flowscope.sdk.spool import Spool
from flowscope.sdk.transport import Outcome, Transport
from flowscope.sdk.wire import run_to_wire

log = logging.getLogger("flowscope.sdk")

Wire = dict[str, Any]
_REPLAY_BUDGET_S = 2.0


@dataclass(frozen=True, slots=True)
class RecorderStats:
    """Counts of run reports (a node that ends after its run is reported again, alone).

    queued: waiting in memory. sent: accepted when first sent. spooled: written to the spool.
    replayed: accepted from the spool (this process's or an earlier one's). dropped: lost
    (queue full, recorder closed, spool unwritable). rejected: refused as invalid, kept in
    the spool directory's rejected.jsonl.
    """

    queued: int
    sent: int
    spooled: int
    replayed: int
    dropped: int
    rejected: int


class _Marker:
    """Queued behind everything submitted before a flush; set once that is sent or spooled."""

    __slots__ = ("done", "stop")

    def __init__(self, stop: bool) -> None:
        self.done = threading.Event()
        self.stop = stop


class Batcher:
    """Owns the queue and the background thread; see the module docstring."""

    def __init__(
        self,
        transport: Transport,
        spool: Spool,
        *,
        max_queue: int,
        max_queue_nodes: int,
        batch_runs: int,
        batch_nodes: int,
        interval: float,
        retry_interval: float,
    ) -> None:
        self._transport = transport
        self._spool = spool
        self._max_queue = max_queue
        self._max_queue_nodes = max_queue_nodes
        self._batch_runs = batch_runs
        self._batch_nodes = batch_nodes
        self._interval = interval
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._queue: deque[tuple[Run, list[Node]] | _Marker] = deque()
        self._queued_runs = 0
        self._queued_nodes = 0
        self._wake = threading.Event()
        self._closed = False
        self._warned_full = False
        self._failing = False
        self._failed_at = 0.0
        self._last_replay = 0.0
        self.sent = self.spooled = self.replayed = self.dropped = self.rejected = 0
        self._thread = threading.Thread(target=self._main, name="flowscope-recorder", daemon=True)
        self._thread.start()

    # -- caller side: never waits on I/O --------------------------------------------------

    def submit(self, run: Run, nodes: list[Node]) -> None:
        n = len(nodes)
        with self._lock:
            full = (
                self._closed
                or self._queued_runs >= self._max_queue
                or (self._queued_nodes > 0 and self._queued_nodes + n > self._max_queue_nodes)
            )
            if full:
                self.dropped += 1
                warn = not self._warned_full
                self._warned_full = True
            else:
                self._queue.append((run, nodes))
                self._queued_runs += 1
                self._queued_nodes += n
                wake = (
                    self._queued_runs >= self._batch_runs or self._queued_nodes >= self._batch_nodes
                )
        if full:
            if warn:
                log.warning(
                    "flowscope recorder %s: dropping runs (see Recorder.stats)",
                    "is closed" if self._closed else "queue is full",
                )
        elif wake:
            self._wake.set()

    def flush(self, timeout: float | None, *, stop: bool = False) -> bool:
        """Wait until everything submitted so far is sent or spooled; False on timeout."""
        marker = _Marker(stop)
        with self._lock:
            if self._closed:
                return not self._thread.is_alive()
            self._closed = stop
            self._queue.append(marker)
        self._wake.set()
        return marker.done.wait(timeout)

    def stats(self) -> RecorderStats:
        with self._lock:
            queued, dropped = self._queued_runs, self.dropped
        return RecorderStats(queued, self.sent, self.spooled, self.replayed, dropped, self.rejected)

    # -- background thread ------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._spool.recover()
            self._replay()
        except Exception:
            log.exception("flowscope recorder: replaying the spool at start failed")
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            with self._lock:
                items, self._queue = self._queue, deque()
                self._queued_runs = self._queued_nodes = 0
            try:
                if self._process(items):
                    break
                if time.monotonic() - self._last_replay >= self._retry_interval:
                    self._replay()
            except Exception:  # the thread must outlive any bug below it
                log.exception("flowscope recorder: unexpected error in the background thread")
                for item in items:
                    if isinstance(item, _Marker):
                        item.done.set()
                if any(isinstance(i, _Marker) and i.stop for i in items):
                    break
        try:
            self._transport.close()
        except Exception:
            log.exception("flowscope recorder: closing the transport failed")

    def _process(self, items: deque[tuple[Run, list[Node]] | _Marker]) -> bool:
        """Send the queued runs in batches; True when asked to stop."""
        batch: list[Wire] = []
        nodes = 0
        failed = False
        for item in items:
            if isinstance(item, _Marker):
                failed |= self._send(batch)
                batch, nodes = [], 0
                if not failed:  # a flush retries the spool, unless the server just failed us
                    self._replay()
                item.done.set()
                if item.stop:
                    return True
                continue
            run, run_nodes = item
            try:
                batch.append(run_to_wire(run, run_nodes))
            except Exception:
                log.exception("flowscope recorder: cannot encode run %s; dropped", run.id)
                self.dropped += 1
                continue
            nodes += len(run_nodes)
            if len(batch) >= self._batch_runs or nodes >= self._batch_nodes:
                failed |= self._send(batch)
                batch, nodes = [], 0
        self._send(batch)
        return False

    def _send(self, batch: list[Wire]) -> bool:
        """Deliver a fresh batch, spooling what cannot go now; True if something was spooled."""
        if not batch:
            return False
        if self._failing and time.monotonic() - self._failed_at < self._retry_interval:
            left = batch
        else:
            left = self._deliver(batch, replaying=False)
        if not left:
            if self._spool.pending():  # the destination is back: catch up
                self._replay()
            return False
        try:
            self._spool.write(left)
            self.spooled += len(left)
        except OSError:
            log.exception("flowscope recorder: cannot spool %d runs; they are lost", len(left))
            self.dropped += len(left)
        return True

    def _replay(self) -> None:
        """Replay spooled batches oldest first, stopping at the first that cannot go yet.

        Within a time budget, so that fresh runs keep flowing after a long outage; the next
        turn of the loop carries on.
        """
        start = self._last_replay = time.monotonic()
        for path in self._spool.pending():
            if time.monotonic() - start > _REPLAY_BUDGET_S:
                self._last_replay = 0.0
                return
            claim = self._spool.claim(path)
            if claim is None:
                continue  # another process is replaying it
            try:
                runs = claim.load()
            except (OSError, ValueError, KeyError, TypeError):
                log.exception("flowscope recorder: unreadable spool file kept as %s", path)
                claim.set_aside()
                continue
            left = self._deliver(runs, replaying=True)
            if left:
                claim.release(None if len(left) == len(runs) else left)
                return
            claim.done()

    def _deliver(self, runs: list[Wire], *, replaying: bool) -> list[Wire]:
        """Send runs, setting aside rejected ones; the runs left to send later."""
        try:
            outcome = self._transport.send(runs)
        except Exception as exc:  # a transport must not raise; if it does, keep the runs
            log.exception("flowscope recorder: transport failed")
            outcome = Outcome("keep", f"{type(exc).__name__}: {exc}")
        if outcome.kind == "accepted":
            if replaying:
                self.replayed += len(runs)
            else:
                self.sent += len(runs)
            if self._failing:
                self._failing = False
                log.info("flowscope recorder: %s accepts runs again", self._transport.destination)
            return []
        if outcome.kind == "keep":
            self._failed_at = time.monotonic()
            if not self._failing:
                self._failing = True
                log.warning(
                    "flowscope recorder: spooling runs to %s (%s)",
                    self._spool.directory,
                    outcome.reason,
                )
            return runs
        if outcome.kind == "split" and len(runs) > 1:
            half = len(runs) // 2
            left = self._deliver(runs[:half], replaying=replaying)
            if left:  # the destination is failing: do not try the second half now
                return left + runs[half:]
            return self._deliver(runs[half:], replaying=replaying)
        if outcome.kind == "split":
            bad = {0: [{"loc": ["body", "runs", 0], "msg": outcome.reason, "type": "refused"}]}
        else:
            bad = outcome.rejected
        try:
            self._spool.reject([(runs[i], errors) for i, errors in sorted(bad.items())])
            self.rejected += len(bad)
            log.warning(
                "flowscope recorder: %d runs rejected, see %s", len(bad), self._spool.directory
            )
        except OSError:
            log.exception(
                "flowscope recorder: cannot keep %d rejected runs; they are lost", len(bad)
            )
            self.dropped += len(bad)
        rest = [run for i, run in enumerate(runs) if i not in bad]
        return self._deliver(rest, replaying=replaying) if rest else []

    def join(self, timeout: float | None) -> None:
        self._thread.join(timeout)
