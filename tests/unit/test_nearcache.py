"""The in-memory copies in front of Redis: bounded, expiring, and never older than a drop."""

from __future__ import annotations

import time

import pytest

from quill.reads.near import NearCache


def _on(capacity: int = 3, ttl: float = 60.0) -> NearCache:
    near = NearCache(capacity, ttl)
    near.reset(on=True)
    return near


def test_it_keeps_the_most_recently_used_up_to_its_capacity() -> None:
    near = _on(capacity=2)
    near.put("a", 1, near.epoch, 1)
    near.put("b", 2, near.epoch, 1)
    assert near.get("a") == 1  # "b" is now the least recently used
    near.put("c", 3, near.epoch, 1)
    assert (near.get("a"), near.get("b"), near.get("c")) == (1, None, 3)
    assert len(near) == 2


def test_a_copy_expires_after_its_ttl() -> None:
    near = _on(ttl=0.01)
    near.put("a", 1, near.epoch, 1)
    time.sleep(0.02)
    assert near.get("a") is None
    assert len(near) == 0


def test_copies_made_together_expire_spread_over_the_last_fifth_of_their_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never later than the ttl, and not all at once: pages filled in the same second
    must not all go back to PostgreSQL in the same second."""
    now = 1000.0
    monkeypatch.setattr(time, "monotonic", lambda: now)
    near = _on(capacity=200, ttl=10.0)
    names = [f"feed:{number}" for number in range(100)]
    for name in names:
        near.put(name, name, near.epoch, 1)

    def alive(at: float) -> int:
        nonlocal now
        now = at
        return sum(1 for name in names if near.get(name) is not None)

    assert alive(1007.9) == 100  # none before 80% of the ttl
    assert 10 < alive(1009.0) < 90  # some gone, some not, half-way through the spread
    assert alive(1010.0) == 0  # all by the ttl


def test_a_copy_is_due_for_a_rebuild_in_the_last_quarter_of_its_life(monkeypatch: pytest.MonkeyPatch) -> None:
    now = 1000.0
    monkeypatch.setattr(time, "monotonic", lambda: now)
    monkeypatch.setattr("quill.reads.near.random.random", lambda: 0.0)  # the whole ttl
    near = _on(ttl=10.0)
    near.put("a", 1, near.epoch, 1)
    assert not near.due("a")
    assert not near.due("missing")
    now = 1007.6
    assert near.due("a")
    assert near.get("a") == 1  # still served while due


def test_a_value_read_before_a_drop_is_not_stored_after_it() -> None:
    near = _on()
    epoch = near.epoch  # a read begins
    near.drop(["unrelated"])  # any invalidation arrives meanwhile
    near.put("a", 1, epoch, 1)
    assert near.get("a") is None
    near.put("a", 2, near.epoch, 1)
    assert near.get("a") == 2


def test_a_prefix_drops_every_name_it_starts_and_a_star_is_only_a_name() -> None:
    near = _on(capacity=10)
    for name in ("list:[1]", "list:[2]", "listing", "profile:alice*", "profile:alice"):
        near.put(name, name, near.epoch, 1)
    near.drop(prefixes=["list:"])
    near.drop(["profile:alice*"])
    held = [name for name in ("list:[1]", "list:[2]", "listing", "profile:alice*", "profile:alice") if near.get(name)]
    assert held == ["listing", "profile:alice"]


def test_it_keeps_within_its_byte_budget() -> None:
    near = NearCache(capacity=100, ttl=60.0, max_bytes=1000)
    near.reset(on=True)
    for number in range(10):
        near.put(f"page:{number}", b"x", near.epoch, 200)
    assert near.size <= 1000
    assert len(near) == 5
    assert near.get("page:9") == b"x"
    assert near.get("page:4") is None  # the oldest went first
    near.put("huge", b"x", near.epoch, 251)  # over a quarter of the budget: never kept
    assert near.get("huge") is None
    near.drop(["page:9"])
    assert near.size == 800


def test_while_off_it_neither_answers_nor_stores() -> None:
    near = _on()
    near.put("a", 1, near.epoch, 1)
    near.reset(on=False)
    assert near.get("a") is None
    near.put("b", 2, near.epoch, 1)
    near.reset(on=True)
    assert near.get("b") is None


def test_a_capacity_of_zero_stores_nothing() -> None:
    near = _on(capacity=0)
    near.put("a", 1, near.epoch, 1)
    assert near.get("a") is None
