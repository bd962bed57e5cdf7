"""The spool: batches that could not be delivered yet, one JSON file each, replayed in order.

A batch file holds the request body, `{"runs": [...]}`, and is named
`<time_ns>-<pid>-<seq>.json` so that names sort in the order batches were spooled. Files are
written to a dot-named temporary and moved into place with `os.replace`, so a reader never
sees half a batch. A replayer claims a file by renaming it to `<name>.claimed-<pid>-<token>`:
the rename succeeds for one process only, so two processes never send the same batch (and if
they did, ingestion is idempotent). Claims of dead processes go back to the queue at start.
Runs the server refuses as invalid are appended to `rejected.jsonl` with the server's errors.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

REJECTED_FILE = "rejected.jsonl"
_CLAIM = ".claimed-"
# Without a portable liveness check (outside POSIX), a claim this old is presumed abandoned.
_STALE_CLAIM_S = 3600.0


def dumps(value: Any) -> bytes:
    # default=str: a caller's odd value (a Path as a title, say) must not make a batch unsendable.
    return orjson.dumps(value, default=str, option=orjson.OPT_UTC_Z)


def default_spool_dir(destination: str) -> Path:
    """`~/.cache/flowscope/spool/<hash of destination>`: batches are never sent elsewhere."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(destination.encode()).hexdigest()[:16]
    return base / "flowscope" / "spool" / digest


class Claim:
    """A spooled batch this process holds: deliver it, then `done()` or `release()`."""

    def __init__(self, original: Path, claimed: Path) -> None:
        self.original = original
        self.path = claimed

    def load(self) -> list[dict[str, Any]]:
        runs = orjson.loads(self.path.read_bytes())["runs"]
        if not isinstance(runs, list):
            raise ValueError("'runs' is not a list")
        return runs

    def done(self) -> None:
        """Delivered: the file goes."""
        self.path.unlink(missing_ok=True)

    def release(self, left: Sequence[dict[str, Any]] | None = None) -> None:
        """Back to the queue at its old place in the order, keeping only `left` if given."""
        if left is None:
            os.replace(self.path, self.original)
            return
        _write_atomically(self.original, dumps({"runs": list(left)}))
        self.path.unlink(missing_ok=True)

    def set_aside(self) -> Path:
        """An unreadable batch is kept for a human, out of the replay queue."""
        target = self.original.with_name(self.original.name + ".corrupt")
        os.replace(self.path, target)
        return target


class Spool:
    """One directory of spooled batches (see the module docstring for the layout)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._token = os.urandom(4).hex()
        self._seq = itertools.count()

    def write(self, runs: Sequence[dict[str, Any]]) -> Path:
        """Spool one batch; raises OSError if the disk refuses."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(self._seq):06d}.json"
        path = self.directory / name
        _write_atomically(path, dumps({"runs": list(runs)}))
        return path

    def pending(self) -> list[Path]:
        """Unclaimed batches, oldest first."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        return [self.directory / n for n in sorted(names) if n.endswith(".json") and n[0] != "."]

    def claim(self, path: Path) -> Claim | None:
        """Take a batch for replay; None when another process took it first."""
        claimed = path.with_name(f"{path.name}{_CLAIM}{os.getpid()}-{self._token}")
        try:
            os.rename(path, claimed)
        except FileNotFoundError:
            return None
        if os.name != "posix":
            os.utime(claimed)  # the claim's age is what `_abandoned` looks at there
        return Claim(path, claimed)

    def recover(self) -> int:
        """Return batches claimed by processes that died to the queue; how many."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return 0
        recovered = 0
        for name in names:
            original, sep, owner = name.partition(_CLAIM)
            if not sep or not _abandoned(self.directory / name, owner):
                continue
            try:
                os.rename(self.directory / name, self.directory / original)
            except OSError:
                continue  # another process recovered it first
            recovered += 1
        return recovered

    def reject(self, runs: Sequence[tuple[dict[str, Any], list[dict[str, Any]]]]) -> None:
        """Append refused runs, each with its errors, to `rejected.jsonl`."""
        self.directory.mkdir(parents=True, exist_ok=True)
        now = time.time()
        lines = b"".join(
            dumps({"rejected_at": now, "errors": errors, "run": run}) + b"\n"
            for run, errors in runs
        )
        # One write of an O_APPEND file: lines of concurrent processes do not interleave.
        fd = os.open(self.directory / REJECTED_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(lines)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)


def _abandoned(path: Path, owner: str) -> bool:
    pid_text, _, _token = owner.partition("-")
    if os.name == "posix" and pid_text.isdigit():
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, another user's
        return False
    try:
        return time.time() - path.stat().st_mtime > _STALE_CLAIM_S
    except OSError:
        return False


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        # The spool exists to survive outages; a crash must not leave an empty batch behind.
        os.fsync(f.fileno())
    os.replace(tmp, path)
