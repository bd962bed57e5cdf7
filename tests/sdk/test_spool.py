"""The spool directory: atomic batch files, order, exclusive claims, recovery, rejections."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from flowscope.sdk.spool import REJECTED_FILE, Spool, default_spool_dir


def runs(*ids: str) -> list[dict[str, object]]:
    return [{"id": i, "started_at": datetime(2026, 1, 2, 3, 4, 5, 6000, tzinfo=UTC)} for i in ids]


def test_batches_are_whole_files_listed_oldest_first(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool")
    assert spool.pending() == []
    for i in range(12):
        spool.write(runs(f"r{i}"))
    pending = spool.pending()
    assert [orjson.loads(p.read_bytes())["runs"][0]["id"] for p in pending] == [
        f"r{i}" for i in range(12)
    ]
    assert orjson.loads(pending[0].read_bytes())["runs"][0]["started_at"] == (
        "2026-01-02T03:04:05.006000Z"
    )
    assert sorted(os.listdir(spool.directory)) == [p.name for p in pending]  # no temporaries


def test_a_claim_is_exclusive_and_done_deletes(tmp_path: Path) -> None:
    first, second = Spool(tmp_path), Spool(tmp_path)  # two processes on one directory
    path = first.write(runs("a", "b"))
    claim = first.claim(path)
    assert claim is not None
    assert second.claim(path) is None
    assert first.pending() == second.pending() == []
    assert [r["id"] for r in claim.load()] == ["a", "b"]
    claim.done()
    assert os.listdir(tmp_path) == []


def test_release_puts_a_batch_back_in_its_place(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    older, newer = spool.write(runs("a", "b", "c")), spool.write(runs("d"))
    claim = spool.claim(older)
    assert claim is not None
    claim.release()
    assert spool.pending() == [older, newer]

    claim = spool.claim(older)
    assert claim is not None
    claim.release([{"id": "c"}])
    assert spool.pending() == [older, newer]
    assert orjson.loads(older.read_bytes()) == {"runs": [{"id": "c"}]}
    assert sorted(os.listdir(tmp_path)) == [older.name, newer.name]


@pytest.mark.skipif(os.name != "posix", reason="liveness by pid is POSIX-only")
def test_claims_of_dead_processes_are_recovered(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    mine, theirs = spool.write(runs("a")), spool.write(runs("b"))
    assert spool.claim(mine) is not None  # this process is alive: its claim stays
    code = "import os; print(os.getpid())"
    dead = subprocess.run([sys.executable, "-c", code], capture_output=True, check=True)
    theirs.rename(theirs.with_name(f"{theirs.name}.claimed-{int(dead.stdout)}-abcd"))
    assert spool.pending() == []
    assert spool.recover() == 1
    assert spool.pending() == [theirs]


def test_rejections_are_appended_one_line_each(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    error = {"loc": ["body", "runs", 0, "id"], "msg": "bad", "type": "value_error"}
    spool.reject([(runs("a")[0], [error])])
    spool.reject([(runs("b")[0], [error]), (runs("c")[0], [error])])
    lines = [orjson.loads(line) for line in (tmp_path / REJECTED_FILE).read_bytes().splitlines()]
    assert [line["run"]["id"] for line in lines] == ["a", "b", "c"]
    assert lines[0]["errors"] == [error]
    assert spool.pending() == []  # never replayed


def test_default_directory_is_per_destination_under_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path))
    a, b = default_spool_dir("http://a:8000"), default_spool_dir("http://b:8000")
    assert a != b
    assert a.parent == b.parent == tmp_path / "flowscope" / "spool"
    assert default_spool_dir("http://a:8000") == a
