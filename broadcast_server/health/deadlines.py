"""A deadline per key (each cluster's heartbeat timeout) in a heap: O(log n) per change, exact firing.

Pure data structure, no clock and no thread: the caller says what time it is. Moving a deadline later
(every heartbeat does) costs O(1): the old heap entry stays and is re-pushed at its new time when it
surfaces, so the heap never holds more than one live entry per key plus stale ones being skipped.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Hashable


class DeadlineHeap:
    def __init__(self) -> None:
        self._when: dict[Hashable, float] = {}  # the true deadline of each key
        self._heap: list[tuple[float, int, Hashable]] = []
        self._queued: dict[Hashable, float] = {}  # the earliest entry of each key in the heap
        self._tie = itertools.count()

    def __len__(self) -> int:
        return len(self._when)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._when

    def get(self, key: Hashable) -> float | None:
        return self._when.get(key)

    def set(self, key: Hashable, when: float) -> None:
        """Set (or move) the deadline of ``key``."""
        self._when[key] = when
        queued = self._queued.get(key)
        if queued is None or when < queued:
            self._queued[key] = when
            heapq.heappush(self._heap, (when, next(self._tie), key))

    def discard(self, key: Hashable) -> None:
        self._when.pop(key, None)

    def next_time(self) -> float | None:
        """The earliest live deadline, or None."""
        self._skip_stale()
        return self._heap[0][0] if self._heap else None

    def pop_due(self, now: float) -> list[Hashable]:
        """Remove and return the keys whose deadline is at or before ``now``, earliest first."""
        due: list[Hashable] = []
        while True:
            self._skip_stale()
            if not self._heap or self._heap[0][0] > now:
                return due
            _, _, key = heapq.heappop(self._heap)
            del self._queued[key]
            del self._when[key]
            due.append(key)

    def _skip_stale(self) -> None:
        heap = self._heap
        while heap:
            when, _, key = heap[0]
            if self._queued.get(key) != when:  # an older entry superseded by an earlier push
                heapq.heappop(heap)
                continue
            true_when = self._when.get(key)
            if true_when is None:  # discarded
                heapq.heappop(heap)
                del self._queued[key]
                continue
            if true_when > when:  # moved later: re-queue at the true time
                heapq.heappop(heap)
                self._queued[key] = true_when
                heapq.heappush(heap, (true_when, next(self._tie), key))
                continue
            return
