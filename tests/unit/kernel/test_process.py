"""A serving process's startup heap: its garbage freed, what lives on left out of collections."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from leadrelay.process import freeze_startup_heap


class _Node:
    """An object that can sit in a reference cycle (only the cycle collector frees those)."""

    def __init__(self) -> None:
        self.partner: _Node | None = None


@pytest.fixture
def unfrozen_after() -> Iterator[None]:
    """Leave the interpreter as the test found it: nothing stays frozen for later tests."""
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen_after")
def test_startup_garbage_is_freed_and_what_lives_on_is_no_longer_collected() -> None:
    garbage_a, garbage_b = _Node(), _Node()
    garbage_a.partner, garbage_b.partner = garbage_b, garbage_a
    freed = weakref.ref(garbage_a)
    del garbage_a, garbage_b
    kept = _Node()
    kept.partner = kept

    freeze_startup_heap()

    assert freed() is None, "a cycle left over from starting up was frozen for good"
    assert gc.get_freeze_count() > 0
    assert all(obj is not kept for obj in gc.get_objects()), "a live object is still walked"
