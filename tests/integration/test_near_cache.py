"""The copies each process keeps in front of Redis, against the machine's real Redis.

"Another process" here is a second Redis client doing what another replica's
``store.invalidate`` does: tombstone the key and publish the names on the channel.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import psycopg
import pytest
import redis.asyncio as redis

from quill import cache
from quill.reads import store
from quill.settings import Settings
from tests.conftest import Api, ApiFactory
from tests.event.conftest import emitted


async def listening() -> None:
    """Wait until the listener has subscribed (the near cache is off until then)."""
    store.start()
    deadline = time.monotonic() + 5
    while not store.near.on:
        assert time.monotonic() < deadline, "the near cache never turned on"
        await asyncio.sleep(0.01)


async def another_replica_invalidates(settings: Settings, *names: str, prefixes: tuple[str, ...] = ()) -> None:
    client = redis.Redis.from_url(settings.redis_url)
    try:
        for name in names:
            await client.set(name, b"-", ex=10)
        message = {"names": list(names), "prefixes": list(prefixes)}
        await client.publish(settings.redis_prefix + "invalidations", orjson.dumps(message))
    finally:
        await client.aclose()


async def eventually(check: object, seconds: float = 2.0) -> None:
    deadline = time.monotonic() + seconds
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)


async def test_a_view_is_read_from_memory_until_another_replica_invalidates_it(settings: Settings) -> None:
    await listening()
    name = cache.key("article", "near")
    await store.store_view(name, {"title": "first"})
    assert (await store.load_view(name))[0] == {"title": "first"}

    # Behind the near cache's back: a replica that changed the view without invalidating.
    client = redis.Redis.from_url(settings.redis_url)
    await client.set(name, orjson.dumps({"title": "second"}))
    await client.aclose()
    assert (await store.load_view(name))[0] == {"title": "first"}, "the second read went to Redis"

    await another_replica_invalidates(settings, name)

    async def dropped() -> bool:
        return (await store.load_view(name))[0] is None

    await eventually(dropped)


async def test_an_invalidation_in_this_process_drops_the_copy_at_once(settings: Settings) -> None:
    await listening()
    name = cache.key("profile", "near")
    await store.store_view(name, {"bio": "old"})
    assert (await store.load_view(name))[0] == {"bio": "old"}
    await store.invalidate([name])
    assert (await store.load_view(name))[0] is None


async def test_concurrent_misses_build_a_page_once(settings: Settings) -> None:
    await listening()
    builds = 0

    async def build() -> bytes:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.05)
        return b'{"page": 1}'

    name = cache.key("list", "concurrent")
    pages = await asyncio.gather(*(store.shared(name, build) for _ in range(50)))
    assert pages == [b'{"page": 1}'] * 50
    assert builds == 1
    assert await store.shared(name, build) == b'{"page": 1}'
    assert builds == 1, "a built page was not kept"


async def test_a_build_begun_before_an_invalidation_is_neither_joined_nor_kept(settings: Settings) -> None:
    await listening()
    release = asyncio.Event()
    builds = 0

    async def build() -> bytes:
        nonlocal builds
        builds += 1
        number = builds
        if number == 1:
            await release.wait()
        return b"%d" % number

    name = cache.key("list", "racing")
    early = asyncio.ensure_future(store.shared(name, build))
    await asyncio.sleep(0.01)
    epoch = store.near.epoch
    await another_replica_invalidates(settings, prefixes=(cache.key("list", ""),))

    async def heard() -> bool:
        return store.near.epoch != epoch

    await eventually(heard)
    late = await store.shared(name, build)  # after the write: must not wait for the old build
    release.set()
    assert (await early, late) == (b"1", b"2")
    assert await store.shared(name, build) == b"2", "the page built before the invalidation was kept"


async def test_a_value_near_its_end_is_rebuilt_while_readers_keep_the_copy(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No reader waits for a hot value's expiry: the first one to find it due starts one
    rebuild in the background and gets the copy; a rebuild that finds the same bytes
    keeps the very object, so what was made from it (flagged pages) stays good."""
    await listening()
    builds = [1, 1, 2]
    release = asyncio.Event()

    async def build() -> bytes:
        body = b"page %d" % builds.pop(0)  # a new object each time, equal or not
        if not release.is_set():
            await release.wait()
        return body

    name = cache.key("marks", "refresh")
    release.set()
    first = await store.shared(name, build)
    release.clear()
    monkeypatch.setattr(store.near, "due", lambda held: held == name)
    readers = await asyncio.wait_for(asyncio.gather(*(store.shared(name, build) for _ in range(5))), 1.0)
    assert all(body is first for body in readers), "a reader waited for the rebuild"
    assert len(builds) == 1, "not exactly one rebuild in the background"
    release.set()
    await asyncio.sleep(0.01)
    monkeypatch.setattr(store.near, "due", lambda held: False)
    assert await store.shared(name, build) is first, "an equal rebuild replaced the object"

    monkeypatch.setattr(store.near, "due", lambda held: held == name)
    assert await store.shared(name, build) is first  # the copy, while "2" is built
    await asyncio.sleep(0.01)
    monkeypatch.setattr(store.near, "due", lambda held: False)
    assert await store.shared(name, build) == b"page 2"


async def test_a_background_rebuild_that_fails_or_spans_an_invalidation_is_not_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild nobody waits for: its failure leaves the copy in place (and its error
    retrieved), and one begun before an invalidation is not stored after it."""
    await listening()
    outcomes: list[bytes | Exception] = [b"page 1", RuntimeError("database away"), b"page 3", b"page 4"]
    release = asyncio.Event()
    release.set()

    async def build() -> bytes:
        outcome = outcomes.pop(0)
        await release.wait()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    name = cache.key("list", "background")
    first = await store.shared(name, build)
    monkeypatch.setattr(store.near, "due", lambda held: held == name)
    assert await store.shared(name, build) is first  # starts the rebuild that fails
    await asyncio.sleep(0.01)
    monkeypatch.setattr(store.near, "due", lambda held: False)
    assert await store.shared(name, build) is first, "a failed rebuild dropped the copy"

    release.clear()
    monkeypatch.setattr(store.near, "due", lambda held: held == name)
    assert await store.shared(name, build) is first  # starts "page 3", held back
    monkeypatch.setattr(store.near, "due", lambda held: False)
    epoch = store.near.epoch
    await another_replica_invalidates(settings, prefixes=(cache.key("list", ""),))

    async def heard() -> bool:
        return store.near.epoch != epoch

    await eventually(heard)
    release.set()
    assert await store.shared(name, build) == b"page 4", "a rebuild from before the invalidation was kept"


async def test_an_alias_never_outlives_the_copy_it_repeats(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    await listening()
    draws = iter([1.0, 0.0])  # the source the shortest life, the alias the longest
    monkeypatch.setattr("quill.reads.near.random.random", lambda: next(draws))

    async def build() -> bytes:
        return b"page"

    name, alias = cache.key("list", "source"), cache.key("list", "alias")
    await store.shared(name, build)
    source_expiry = store.near.expiry(name)
    assert source_expiry is not None
    await store.shared(name, build, alias=alias)
    alias_expiry = store.near.expiry(alias)
    assert alias_expiry is not None
    assert alias_expiry <= source_expiry


async def test_a_failed_build_reaches_every_waiter_and_is_not_kept(settings: Settings) -> None:
    await listening()
    builds = 0

    async def build() -> bytes:
        nonlocal builds
        builds += 1
        await asyncio.sleep(0.02)
        if builds == 1:
            raise RuntimeError("database away")
        return b"ok"

    name = cache.key("list", "failing")
    results = await asyncio.gather(*(store.shared(name, build) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    assert await store.shared(name, build) == b"ok"
    assert builds == 2


async def test_the_anonymous_list_shows_every_change_at_once(api: Api, settings: Settings) -> None:
    await listening()
    alice = await api.register("alice")
    bob = await api.register("bob")

    async def anonymous() -> dict[str, object]:
        response = await api.get("/api/articles?limit=5")
        assert response.status_code == 200
        body: dict[str, object] = response.json()
        return body

    assert (await anonymous())["articlesCount"] == 0
    slug = (await api.create_article(alice, "Listed"))["slug"]
    listed = await anonymous()
    assert listed["articlesCount"] == 1
    assert await anonymous() == listed  # now held in memory

    await api.post(f"/api/articles/{slug}/favorite", bob)
    assert (await anonymous())["articles"][0]["favoritesCount"] == 1  # type: ignore[index]
    await api.put(f"/api/articles/{slug}", alice, json={"article": {"title": "Renamed"}})
    assert (await anonymous())["articles"][0]["title"] == "Renamed"  # type: ignore[index]
    await api.put("/api/user", alice, json={"user": {"bio": "New bio"}})
    assert (await anonymous())["articles"][0]["author"]["bio"] == "New bio"  # type: ignore[index]
    renamed = (await api.get("/api/articles?limit=5")).json()["articles"][0]["slug"]
    await api.delete(f"/api/articles/{renamed}", alice)
    assert (await anonymous())["articlesCount"] == 0


async def test_a_rendering_is_kept_only_for_the_very_view_it_came_from(settings: Settings) -> None:
    await listening()
    name = cache.key("article", "rendered")
    renders: list[str] = []

    def render(view: dict[str, Any]) -> bytes:
        renders.append(view["title"])
        return orjson.dumps(view)

    await store.store_view(name, {"title": "first"})
    view = (await store.load_view(name))[0]
    assert view is not None
    assert store.rendered(name, view, lambda: render(view)) == b'{"title":"first"}'
    assert store.rendered(name, view, lambda: render(view)) == b'{"title":"first"}'
    assert renders == ["first"]
    equal_but_other = {"title": "first"}
    assert store.rendered(name, equal_but_other, lambda: render(equal_but_other)) == b'{"title":"first"}'
    assert renders == ["first", "first"], "a copy was served for a view it was not rendered from"

    await store.invalidate([name])
    client = redis.Redis.from_url(settings.redis_url)
    await client.set(name, orjson.dumps({"title": "second"}))  # the writer's next view, past the tombstone
    await client.aclose()
    fresh = (await store.load_view(name))[0]
    assert fresh is not None
    assert store.rendered(name, fresh, lambda: render(fresh)) == b'{"title":"second"}'


async def test_the_anonymous_article_shows_every_change_at_once(api: Api, settings: Settings) -> None:
    await listening()
    alice, bob = await api.register("alice"), await api.register("bob")
    slug = (await api.create_article(alice, "Kept"))["slug"]

    async def anonymous() -> dict[str, Any]:
        response = await api.get(f"/api/articles/{slug}")
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        article: dict[str, Any] = response.json()["article"]
        return article

    first = await anonymous()
    assert await anonymous() == first  # rendered once, now held
    await api.post(f"/api/articles/{slug}/favorite", bob)
    assert (await anonymous())["favoritesCount"] == 1
    await api.put(f"/api/articles/{slug}", alice, json={"article": {"body": "Changed"}})
    assert (await anonymous())["body"] == "Changed"
    await api.put("/api/user", alice, json={"user": {"bio": "New bio"}})
    assert (await anonymous())["author"]["bio"] == "New bio"
    signed_in = (await api.get(f"/api/articles/{slug}", bob)).json()["article"]
    assert signed_in["favorited"] is True
    assert (await anonymous())["favorited"] is False
    await api.delete(f"/api/articles/{slug}", alice)
    assert (await api.get(f"/api/articles/{slug}")).status_code == 404


async def test_a_page_held_under_its_query_string_is_dropped_with_the_lists(api: Api, settings: Settings) -> None:
    await listening()
    alice = await api.register("alice")
    asked = ["/api/articles?limit=5&offset=0", "/api/articles?offset=0&limit=5", "/api/articles?limit=5"]

    async def counts() -> list[int]:
        return [(await api.get(path)).json()["articlesCount"] for path in asked]

    assert await counts() == [0, 0, 0]
    assert await counts() == [0, 0, 0]  # each now held under its own query string
    await api.create_article(alice, "Listed")
    assert await counts() == [1, 1, 1]
    for _ in range(2):  # a refused query is never held: 422 every time, and nothing else changes
        response = await api.get("/api/articles?limit=0")
        assert response.status_code == 422
        assert response.json() == {"errors": {"limit": ["must be a whole number of at least 1"]}}


async def _gets_served(settings: Settings) -> int:
    """GET commands this Redis server has run (``INFO commandstats``), every client counted,
    less the one inside each fill that replaces a tombstone (a script: ``EVAL``)."""
    client = redis.Redis.from_url(settings.redis_url)
    try:
        stats = await client.info("commandstats")
    finally:
        await client.aclose()
    return int(stats.get("cmdstat_get", {}).get("calls", 0)) - int(stats.get("cmdstat_eval", {}).get("calls", 0))


async def test_an_anonymous_article_read_that_misses_asks_redis_once(api: Api, settings: Settings) -> None:
    await listening()
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Missed"))["slug"]
    # The count is server-wide, so another client's GET can only add to it: a regression (two
    # GETs per miss) fails every attempt, while a stray GET from elsewhere is retried away.
    for attempt in range(3):
        body = f"Changed {attempt}"
        await api.put(f"/api/articles/{slug}", alice, json={"article": {"body": body}})  # leaves a tombstone
        before = await _gets_served(settings)
        response = await api.get(f"/api/articles/{slug}")  # a miss: Redis answers the tombstone, then PostgreSQL
        assert response.json()["article"]["body"] == body
        served = await _gets_served(settings) - before
        if served == 1:
            break
    assert served == 1


async def test_a_signed_in_list_is_never_shared(api: Api, settings: Settings) -> None:
    await listening()
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice, "Flags"))["slug"]
    await api.post(f"/api/articles/{slug}/favorite", bob)
    assert (await api.get("/api/articles", bob)).json()["articles"][0]["favorited"] is True
    assert (await api.get("/api/articles", alice)).json()["articles"][0]["favorited"] is False
    assert (await api.get("/api/articles")).json()["articles"][0]["favorited"] is False


@pytest.mark.parametrize("filters", ["?tag=dragons", "?author=alice", "?favorited=bob", "?offset=1"])
async def test_each_filter_is_its_own_page(api: Api, settings: Settings, filters: str) -> None:
    await listening()
    alice = await api.register("alice")
    bob = await api.register("bob")
    first = (await api.create_article(alice, "One", tagList=["dragons"]))["slug"]
    await api.create_article(bob, "Two")
    await api.post(f"/api/articles/{first}/favorite", bob)
    everything = (await api.get("/api/articles")).json()
    filtered = (await api.get(f"/api/articles{filters}")).json()
    assert everything["articlesCount"] == 2
    assert len(filtered["articles"]) == 1


async def test_a_username_ending_in_a_star_is_invalidated_like_any_other(api: Api, settings: Settings) -> None:
    await listening()
    star = await api.register("alice*")
    assert (await api.get("/api/profiles/alice*")).json()["profile"]["bio"] is None
    await api.put("/api/user", star, json={"user": {"bio": "Starred"}})
    assert (await api.get("/api/profiles/alice*")).json()["profile"]["bio"] == "Starred"
    client = redis.Redis.from_url(settings.redis_url)
    kept = await client.get(cache.key("profile", "alice*")) or b"-"
    await client.aclose()
    # The tombstone, or the view the read after the write put in its place: never the old one.
    assert kept[:1] == b"-" or orjson.loads(kept)["bio"] == "Starred", "the old Redis view survived the write"


async def test_a_read_that_fetched_the_old_view_during_a_write_is_not_kept(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A reader that went to Redis after this process dropped its copy, but before the
    tombstone landed, must not leave the old view in memory once the write returns."""
    await listening()
    name = cache.key("article", "racing-write")
    await store.store_view(name, {"title": "old"})

    def racing_reader_fills(pipe: Any, names: Any, prefixes: Any = ()) -> None:
        # This process's own message still in flight (not published here at all), and a
        # reader's fill from Redis landing before the tombstone does.
        store.near.put(name, {"title": "old"}, store.near.epoch, 10)

    monkeypatch.setattr(store, "announce", racing_reader_fills)
    await store.invalidate([name])
    assert (await store.load_view(name))[0] is None


async def test_search_pages_show_an_article_once_it_is_indexed(
    api: Api, api_for: ApiFactory, settings: Settings
) -> None:
    """The index is filled by the search event function after the write: the pages built
    before it must not outlive it."""
    await listening()
    alice = await api.register("alice")
    assert (await api.get("/api/articles?q=zephyr")).json()["articlesCount"] == 0
    created = await api.create_article(alice, "Zephyr winds")
    assert (await api.get("/api/articles?q=zephyr")).json()["articlesCount"] == 0  # not indexed yet: held
    search = await api_for("search")
    event = {
        "specversion": "1.0",
        "id": "test-indexed-1",
        "source": "/quill/posts",
        "type": "io.quill.article.created.v1",
        "datacontenttype": "application/json",
        "data": emitted("io.quill.article.created.v1", created_id(settings, created["slug"])),
    }
    response = await search.post("/", json=event, headers={"Content-Type": "application/cloudevents+json"})
    assert response.status_code in (200, 202, 204), response.text
    assert (await api.get("/api/articles?q=zephyr")).json()["articlesCount"] == 1


def created_id(settings: Settings, slug: str) -> int:
    with psycopg.connect(settings.database_url) as conn:
        row = conn.execute("SELECT id FROM articles WHERE slug = %s", (slug,)).fetchone()
    assert row is not None
    return int(row[0])


async def test_the_feed_comes_from_memory_and_every_write_it_shows_is_read_at_once(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between two writes a viewer's feed is not read from PostgreSQL again; after a create,
    a favorite, a follow or an unfollow the very next read shows it."""
    from quill.domain import articles

    await listening()
    alice, bob, carol = [await api.register(name) for name in ("alice", "bob", "carol")]
    built = 0
    feed = articles.feed

    async def counted(viewer_id: int, limit: int, offset: int) -> Any:
        nonlocal built
        built += 1
        return await feed(viewer_id, limit, offset)

    monkeypatch.setattr(articles, "feed", counted)

    async def bobs_feed() -> dict[str, Any]:
        response = await api.get("/api/articles/feed", bob)
        assert response.status_code == 200
        document: dict[str, Any] = response.json()
        return document

    assert (await bobs_feed())["articlesCount"] == 0
    assert (await api.post("/api/profiles/alice/follow", bob)).status_code == 200
    slug = (await api.create_article(alice, "Followed"))["slug"]
    first = await bobs_feed()
    assert [article["slug"] for article in first["articles"]] == [slug]
    assert first["articles"][0]["author"]["following"] is True
    reads = built
    assert await bobs_feed() == first
    assert built == reads  # from memory

    await api.post(f"/api/articles/{slug}/favorite", bob)
    assert (await bobs_feed())["articles"][0]["favorited"] is True
    await api.post(f"/api/articles/{slug}/favorite", carol)
    assert (await bobs_feed())["articles"][0]["favoritesCount"] == 2
    await api.create_article(alice, "Second")
    assert (await bobs_feed())["articlesCount"] == 2
    await api.delete("/api/profiles/alice/follow", bob)
    assert (await bobs_feed())["articlesCount"] == 0


async def test_concurrent_readers_of_a_feed_page_that_changed_wait_for_one_build(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed page that a write dropped (or that expired) is built once for every reader
    asking at that moment, not once each: at 32 readers a page would otherwise be 32
    queries queued on a pool of five."""
    from quill.domain import articles

    await listening()
    alice, bob = [await api.register(name) for name in ("alice", "bob")]
    assert (await api.post("/api/profiles/alice/follow", bob)).status_code == 200
    await api.create_article(alice, "Before")
    built = 0
    feed = articles.feed

    async def counted(viewer_id: int, limit: int, offset: int) -> Any:
        nonlocal built
        built += 1
        await asyncio.sleep(0.05)  # long enough for every reader to arrive meanwhile
        return await feed(viewer_id, limit, offset)

    monkeypatch.setattr(articles, "feed", counted)
    assert (await api.get("/api/articles/feed", bob)).status_code == 200  # the marks, in memory
    slug = (await api.create_article(alice, "After"))["slug"]
    built = 0
    pages = await asyncio.gather(*(api.get("/api/articles/feed", bob) for _ in range(20)))
    assert {response.status_code for response in pages} == {200}
    assert {response.json()["articles"][0]["slug"] for response in pages} == {slug}
    assert built == 1

    # Another viewer's marks are other objects: their page is their own build.
    carol = await api.register("carol")
    assert (await api.get("/api/articles/feed", carol)).json()["articlesCount"] == 0
    assert built == 2


async def test_a_value_made_from_sources_is_kept_only_for_those_very_objects(settings: Settings) -> None:
    """``shared(made_from=...)``: callers holding the same objects share one build and its
    result; a caller holding a new object (new marks after a write) builds again and
    does not join a build made from the old one."""
    await listening()
    release = asyncio.Event()
    builds = 0

    async def build() -> bytes:
        nonlocal builds
        builds += 1
        number = builds
        if number == 1:
            await release.wait()
        return b"%d" % number

    name = cache.key("feed", "sources")
    old, new = b'{"marks": 1}', b'{"marks": 2}'  # equal values would still be two objects
    early = [asyncio.ensure_future(store.shared(name, build, made_from=(old,))) for _ in range(5)]
    await asyncio.sleep(0.01)
    assert builds == 1
    late = await store.shared(name, build, made_from=(new,))
    release.set()
    assert (await asyncio.gather(*early), late) == ([b"1"] * 5, b"2")
    assert builds == 2
    assert store.held(name, new) == b"2"
    assert await store.shared(name, build, made_from=(new,)) == b"2"
    assert await store.shared(name, build, made_from=(old,)) == b"3", "a value kept for other objects was used"


async def test_the_first_read_after_a_write_fills_the_cache_again(api: Api, settings: Settings) -> None:
    """A reader that found the write's tombstone loaded the row after that write: its view
    replaces that tombstone, so the next read is served without PostgreSQL."""
    await listening()
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Refilled"))["slug"]
    name = cache.key("article", slug)
    await api.put(f"/api/articles/{slug}", alice, json={"article": {"body": "Second"}})
    client = redis.Redis.from_url(settings.redis_url)
    try:
        assert (await client.get(name) or b"")[:1] == b"-"
        assert (await api.get(f"/api/articles/{slug}")).json()["article"]["body"] == "Second"
        refilled = await client.get(name)
        assert refilled is not None
        assert orjson.loads(refilled)["body"] == "Second"
    finally:
        await client.aclose()


async def test_a_fill_never_replaces_a_later_writes_tombstone(settings: Settings) -> None:
    """A reader found one write's tombstone, then a second write left its own before the
    reader's (now older) view arrived: the view must not replace the second tombstone."""
    name = cache.key("article", "twice-written")
    await store.invalidate([name])
    view, first = await store.load_view(name)
    assert view is None
    assert first is not None
    await store.invalidate([name])  # the second write
    await store.store_view(name, {"title": "loaded between the writes"}, first)
    client = redis.Redis.from_url(settings.redis_url)
    try:
        second = await client.get(name)
    finally:
        await client.aclose()
    assert isinstance(second, bytes)
    assert second[:1] == b"-"
    assert second != first
    await store.store_view(name, {"title": "loaded after both"}, second)
    assert (await store.load_view(name))[0] == {"title": "loaded after both"}
