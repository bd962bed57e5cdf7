"""Transports: how a batch of wire runs reaches flowscope; here the protocol and HTTP.

A transport retries what may pass on a second try (network errors, timeouts, 429, 5xx, a
database that went away) a few times with short exponential backoff, then answers `keep`: the
recorder spools the batch for later. It never raises; every answer is an `Outcome`.
"""

from __future__ import annotations

import gzip
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import httpx

from flowscope import __version__
from flowscope.sdk.spool import dumps

log = logging.getLogger("flowscope.sdk")

Errors = list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a batch.

    accepted: stored. rejected: the runs at these indexes are invalid, the others were not
    stored (resend them). split: refused as a whole (too large, or an error naming no run);
    halves may pass. keep: not delivered now; spool and retry later.
    """

    kind: Literal["accepted", "rejected", "split", "keep"]
    reason: str = ""
    rejected: dict[int, Errors] = field(default_factory=dict)


ACCEPTED = Outcome("accepted")


class Transport(Protocol):
    """Delivers batches of wire runs (dicts shaped like `RunCreate`)."""

    @property
    def destination(self) -> str:
        """Where batches go, without secrets; names the default spool directory."""
        ...

    def send(self, runs: list[dict[str, Any]]) -> Outcome: ...

    def close(self) -> None: ...


def retrying(
    attempts: int, backoff: float, attempt: Callable[[], Outcome | tuple[str, float]]
) -> Outcome:
    """Call `attempt` until it gives an Outcome; a (reason, wait) tuple means try again."""
    reason = ""
    delay = backoff
    for n in range(attempts):
        result = attempt()
        if isinstance(result, Outcome):
            return result
        reason, wait = result
        if n + 1 < attempts:
            time.sleep(max(delay, min(wait, 4 * backoff)))
            delay *= 2
    return Outcome("keep", reason)


def by_run(errors: Any, size: int) -> Outcome:
    """Errors located at ["body", "runs", i, ...] become a rejection of runs i; else split."""
    rejected: dict[int, Errors] = {}
    if not isinstance(errors, list) or not errors:
        return Outcome("split", f"refused without naming a run: {errors!r}"[:1000])
    for error in errors:
        loc = error.get("loc") if isinstance(error, dict) else None
        if not (
            isinstance(loc, list)
            and len(loc) >= 3
            and loc[:2] == ["body", "runs"]
            and isinstance(loc[2], int)
            and 0 <= loc[2] < size
        ):
            return Outcome("split", f"refused without naming a run: {error!r}"[:1000])
        rejected.setdefault(loc[2], []).append(error)
    return Outcome("rejected", rejected=rejected)


class HttpTransport:
    """POST /api/v1/runs, gzipped, with a sync httpx client (used by one thread)."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        attempts: int = 3,
        backoff: float = 0.25,
    ) -> None:
        self.destination = url.rstrip("/")
        self._attempts = attempts
        self._backoff = backoff
        self._auth_failing = False
        self._client = httpx.Client(
            base_url=self.destination,
            timeout=httpx.Timeout(timeout, connect=min(timeout, 3.0)),
            headers={
                "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
                "User-Agent": f"flowscope-python/{__version__}",
            },
        )

    def send(self, runs: list[dict[str, Any]]) -> Outcome:
        # Level 1: most of gzip's gain on repetitive JSON for a fraction of its CPU time.
        body = gzip.compress(dumps({"runs": runs}), compresslevel=1, mtime=0)
        return retrying(self._attempts, self._backoff, lambda: self._post(body, len(runs)))

    def _post(self, body: bytes, size: int) -> Outcome | tuple[str, float]:
        try:
            response = self._client.post("/api/v1/runs", content=body)
        except httpx.TransportError as exc:  # refused, reset, timed out, ...
            return f"{self.destination} unreachable: {type(exc).__name__}: {exc}", 0.0
        status = response.status_code
        if status == 200:
            self._auth_failing = False
            return ACCEPTED
        if status == 422:
            return by_run(_detail(response), size)
        if status == 413:
            return Outcome("split", f"HTTP 413: {response.text[:500]}")
        reason = f"HTTP {status} from {self.destination}: {response.text[:500]}"
        if status == 429 or status >= 500:
            return reason, _retry_after(response)
        if status in (401, 403, 404):
            if not self._auth_failing:
                # Once per outage: a wrong key or URL is fixed by a human; batches wait in the
                # spool meanwhile.
                self._auth_failing = True
                log.error("flowscope refused the runs (%s); spooling them until fixed", reason)
            return Outcome("keep", reason)
        if status == 408:
            return reason, _retry_after(response)
        # Any other 4xx will not change by sending the same runs again: halve the batch until
        # the runs at fault stand alone, and set those aside as rejected.
        return Outcome("split", reason)

    def close(self) -> None:
        self._client.close()


def _detail(response: httpx.Response) -> Any:
    try:
        return response.json().get("detail")
    except (ValueError, AttributeError):
        return None


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    try:
        return max(float(value), 0.0)
    except ValueError:
        return 0.0
