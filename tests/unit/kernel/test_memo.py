"""The one memo of pure results: each worked out once per key, a bounded number kept."""

from __future__ import annotations

from functools import partial

import pytest

from leadrelay.memo import Memo


def test_a_value_is_worked_out_once_per_key() -> None:
    memo: Memo[str, int] = Memo(10)
    calls: list[str] = []

    def length(word: str) -> int:
        calls.append(word)
        return len(word)

    assert [memo.get(w, partial(length, w)) for w in ("ab", "abc", "ab", "abc")] == [2, 3, 2, 3]
    assert calls == ["ab", "abc"]


def test_past_its_size_the_memo_starts_again_and_still_answers_right() -> None:
    memo: Memo[int, int] = Memo(3)
    for n in range(10):
        assert memo.get(n, partial(pow, n, 2)) == n * n
        assert len(memo) <= 3
    assert memo.get(9, lambda: -1) == 81  # kept since the last fresh start
    assert memo.get(0, lambda: 0) == 0


def test_a_key_that_cannot_be_hashed_is_refused() -> None:
    memo: Memo[object, int] = Memo(3)
    with pytest.raises(TypeError):
        memo.get(["a list"], lambda: 1)
    with pytest.raises(ValueError, match="at least one"):
        Memo(0)
