"""In-process cache: a bounded LRU with TTLs, for one server process or tests.

Entries are not shared between processes, so single-flight needs no lease here: the
in-process part of flowscope.cache.backends.singleflight covers it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from flowscope.cache.backends.base import Entry, selector
from flowscope.timeutil import now_us as _now_us


class MemoryBackend:
    """Least recently used entries go first once `max_entries` are held."""

    def __init__(self, max_entries: int = 10_000) -> None:
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str], Entry] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, tenant_id: int, key: str) -> Entry | None:
        slot = (tenant_id, key)
        with self._lock:
            entry = self._entries.get(slot)
            if entry is None:
                return None
            if entry.expires_at_us <= _now_us():
                del self._entries[slot]
                return None
            self._entries.move_to_end(slot)
            return entry

    def set(self, tenant_id: int, key: str, entry: Entry) -> None:
        slot = (tenant_id, key)
        with self._lock:
            self._entries[slot] = entry
            self._entries.move_to_end(slot)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def invalidate(
        self,
        tenant_id: int,
        *,
        app_id: str,
        workflow_id: str,
        node_type: str | None = None,
        node_id: str | None = None,
        key: str | None = None,
        all: bool = False,
    ) -> int:
        column, value = selector(node_type, node_id, key, all)
        with self._lock:
            doomed = [
                slot
                for slot, entry in self._entries.items()
                if slot[0] == tenant_id
                and entry.app_id == app_id
                and entry.workflow_id == workflow_id
                and (column == "all" or _field(slot, entry, column) == value)
            ]
            for slot in doomed:
                del self._entries[slot]
        return len(doomed)

    def cleanup(self, now_us: int | None = None) -> int:
        now = _now_us() if now_us is None else now_us
        with self._lock:
            doomed = [slot for slot, entry in self._entries.items() if entry.expires_at_us <= now]
            for slot in doomed:
                del self._entries[slot]
        return len(doomed)

    def stats(self, tenant_id: int, app_id: str, workflow_id: str) -> tuple[int, int]:
        now = _now_us()
        count = size = 0
        with self._lock:
            for (tenant, _key), entry in self._entries.items():
                if (
                    tenant == tenant_id
                    and entry.app_id == app_id
                    and entry.workflow_id == workflow_id
                    and entry.expires_at_us > now
                ):
                    count += 1
                    size += entry.size
        return count, size

    def close(self) -> None:
        with self._lock:
            self._entries.clear()


def _field(slot: tuple[int, str], entry: Entry, column: str) -> str:
    if column == "key":
        return slot[1]
    return entry.node_type if column == "node_type" else entry.node_id
