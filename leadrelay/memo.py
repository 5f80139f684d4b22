"""Pure results worked out once per key and kept, for work repeated on every event.

One way to keep them, bounded: past ``size`` keys every kept value is dropped at once. That
costs one miss per key afterwards, and a hit costs a dict lookup, where an LRU's bookkeeping
would cost on every hit. Only for values that depend on nothing but their key.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final, Generic, TypeVar, cast

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
_MISSING: Final = object()


class Memo(Generic[K, V]):
    """Values by key, each worked out on its first ``get``, at most ``size`` kept."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("a memo keeps at least one value")
        self._size = size
        self._values: dict[K, V] = {}

    def get(self, key: K, work_out: Callable[[], V]) -> V:
        """The value kept for ``key``, or ``work_out()`` kept for it (``TypeError`` if the key
        cannot be hashed)."""
        kept = self._values.get(key, _MISSING)
        if kept is not _MISSING:
            return cast(V, kept)
        if len(self._values) >= self._size:
            self._values.clear()
        value = self._values[key] = work_out()
        return value

    def __len__(self) -> int:
        return len(self._values)
