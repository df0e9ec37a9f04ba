"""The in-memory copies in front of Redis: bounded, expiring, and never older than a drop."""

from __future__ import annotations

import time

from quill.nearcache import NearCache


def _on(capacity: int = 3, ttl: float = 60.0) -> NearCache:
    near = NearCache(capacity, ttl)
    near.reset(on=True)
    return near


def test_it_keeps_the_most_recently_used_up_to_its_capacity() -> None:
    near = _on(capacity=2)
    near.put("a", 1, near.epoch)
    near.put("b", 2, near.epoch)
    assert near.get("a") == 1  # "b" is now the least recently used
    near.put("c", 3, near.epoch)
    assert (near.get("a"), near.get("b"), near.get("c")) == (1, None, 3)
    assert len(near) == 2


def test_a_copy_expires_after_its_ttl() -> None:
    near = _on(ttl=0.01)
    near.put("a", 1, near.epoch)
    time.sleep(0.02)
    assert near.get("a") is None
    assert len(near) == 0


def test_a_value_read_before_a_drop_is_not_stored_after_it() -> None:
    near = _on()
    epoch = near.epoch  # a read begins
    near.drop(["unrelated"])  # any invalidation arrives meanwhile
    near.put("a", 1, epoch)
    assert near.get("a") is None
    near.put("a", 2, near.epoch)
    assert near.get("a") == 2


def test_a_name_ending_in_a_star_drops_every_name_it_starts() -> None:
    near = _on(capacity=10)
    for name in ("list:[1]", "list:[2]", "listing", "article:x"):
        near.put(name, name, near.epoch)
    near.drop(["list:*"])
    assert [name for name in ("list:[1]", "list:[2]", "listing", "article:x") if near.get(name)] == [
        "listing",
        "article:x",
    ]


def test_while_off_it_neither_answers_nor_stores() -> None:
    near = _on()
    near.put("a", 1, near.epoch)
    near.reset(on=False)
    assert near.get("a") is None
    near.put("b", 2, near.epoch)
    near.reset(on=True)
    assert near.get("b") is None


def test_a_capacity_of_zero_stores_nothing() -> None:
    near = _on(capacity=0)
    near.put("a", 1, near.epoch)
    assert near.get("a") is None
