"""Races: concurrent writes keep counts exact, exactly one registration wins, no 500."""

from __future__ import annotations

import asyncio

from tests.conftest import Api


async def test_twenty_concurrent_registrations_of_one_username_one_wins(api: Api) -> None:
    body = {"user": {"username": "racer", "email": "racer@example.com", "password": "password123"}}

    responses = await asyncio.gather(*(api.post("/api/users", json=body) for _ in range(20)))

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * 19


async def test_concurrent_favorites_by_different_users_count_exactly(api: Api) -> None:
    author = await api.register("author")
    slug = (await api.create_article(author))["slug"]
    fans = [await api.register(f"fan{n}") for n in range(50)]

    favorited = await asyncio.gather(*(api.post(f"/api/articles/{slug}/favorite", fan) for fan in fans))
    assert all(response.status_code == 200 for response in favorited)
    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["favoritesCount"] == 50

    mixed = await asyncio.gather(
        *(api.delete(f"/api/articles/{slug}/favorite", fan) for fan in fans[:25]),
        *(api.post(f"/api/articles/{slug}/favorite", fan) for fan in fans[25:]),
    )
    assert all(response.status_code == 200 for response in mixed)
    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["favoritesCount"] == 25


async def test_concurrent_creates_sharing_a_new_tag_all_succeed(api: Api) -> None:
    writers = [await api.register(f"writer{n}") for n in range(8)]

    responses = await asyncio.gather(
        *(
            api.post(
                "/api/articles",
                token,
                json={"article": {"title": "Same title", "description": "d", "body": "b", "tagList": ["brand-new"]}},
            )
            for token in writers
        )
    )

    assert [response.status_code for response in responses] == [201] * 8
    assert len({response.json()["article"]["slug"] for response in responses}) == 8
    assert (await api.get("/api/articles?tag=brand-new")).json()["articlesCount"] == 8


async def test_concurrent_updates_of_one_article_all_apply_without_errors(api: Api) -> None:
    author = await api.register("author")
    slug = (await api.create_article(author))["slug"]

    responses = await asyncio.gather(
        *(api.put(f"/api/articles/{slug}", author, json={"article": {"body": f"v{n}"}}) for n in range(50))
    )

    assert [response.status_code for response in responses] == [200] * 50
    final = (await api.get(f"/api/articles/{slug}")).json()["article"]["body"]
    assert final in {f"v{n}" for n in range(50)}


async def test_reading_favoriting_and_commenting_while_the_article_is_deleted_never_500s(api: Api) -> None:
    author = await api.register("author")
    reader = await api.register("reader")
    for round_number in range(6):
        slug = (await api.create_article(author, f"Doomed {round_number}"))["slug"]
        await api.get(f"/api/articles/{slug}", reader)  # cached
        responses = await asyncio.gather(
            api.delete(f"/api/articles/{slug}", author),
            *(api.get(f"/api/articles/{slug}", reader) for _ in range(4)),
            api.post(f"/api/articles/{slug}/favorite", reader),
            api.post(f"/api/articles/{slug}/comments", reader, json={"comment": {"body": "late"}}),
        )
        assert all(response.status_code < 500 for response in responses), [r.text for r in responses]
        assert (await api.get(f"/api/articles/{slug}", reader)).status_code == 404


async def test_two_authors_retitling_to_the_same_title_at_once_both_succeed(api: Api) -> None:
    first = await api.register("first")
    second = await api.register("second")
    for round_number in range(5):
        one = (await api.create_article(first, f"One {round_number}"))["slug"]
        two = (await api.create_article(second, f"Two {round_number}"))["slug"]
        title = f"Shared title {round_number}"
        responses = await asyncio.gather(
            api.put(f"/api/articles/{one}", first, json={"article": {"title": title}}),
            api.put(f"/api/articles/{two}", second, json={"article": {"title": title}}),
        )
        assert [response.status_code for response in responses] == [200, 200]
        slugs = {response.json()["article"]["slug"] for response in responses}
        assert len(slugs) == 2


async def test_concurrent_follow_and_unfollow_settle_consistently(api: Api) -> None:
    await api.register("star")
    fans = [await api.register(f"follower{n}") for n in range(20)]

    responses = await asyncio.gather(
        *(api.post("/api/profiles/star/follow", fan) for fan in fans),
        *(api.delete("/api/profiles/star/follow", fan) for fan in fans[:10]),
        *(api.post("/api/profiles/star/follow", fan) for fan in fans[:10]),
    )

    assert all(response.status_code == 200 for response in responses)
    states = [(await api.get("/api/profiles/star", fan)).json()["profile"]["following"] for fan in fans]
    assert all(states[10:])  # those never unfollowed follow
    for fan, following in zip(fans, states, strict=True):  # every answer matches what is stored
        feed = (await api.get("/api/articles/feed", fan)).status_code
        assert feed == 200
        assert isinstance(following, bool)


async def test_readiness_tells_the_truth_while_the_pool_is_saturated(api: Api, settings_factory: object) -> None:
    from typing import Any, cast

    from quill import db
    from quill.settings import use_settings

    await db.aclose()
    with use_settings(cast(Any, settings_factory)(db_pool_max=2, db_pool_timeout=0.5)):
        pool = await db.get_pool()

        async def hold() -> None:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(1.5)")

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.sleep(0.3)
        started = asyncio.get_running_loop().time()
        busy = await api.get("/health/readiness")
        elapsed = asyncio.get_running_loop().time() - started
        await asyncio.gather(*holders)
        idle = await api.get("/health/readiness")
        await db.aclose()

    assert elapsed < 1.5, "readiness answers while the pool is busy"
    assert busy.status_code == 200
    assert busy.json()["checks"]["database"] == "saturated"
    assert idle.json()["checks"]["database"] == "ok"


async def test_readiness_fails_when_postgresql_cannot_be_reached(api: Api, settings_factory: object) -> None:
    """F4: a pool that keeps failing to connect has no free connection either; it is down, not busy."""
    from typing import Any, cast

    from quill import db
    from quill.settings import use_settings
    from tests.conftest import free_port

    await db.aclose()
    nowhere = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    with use_settings(cast(Any, settings_factory)(database_url=nowhere, db_pool_timeout=0.5)):
        first = await api.get("/health/readiness")
        await asyncio.sleep(1.5)  # the pool's reconnection attempts are under way
        again = await api.get("/health/readiness")
        tags = await api.get("/api/tags")
        await db.aclose()

    for answer in (first, again):
        assert answer.status_code == 503
        assert answer.json() == {"status": "not ready", "checks": {"database": "down", "redis": "ok"}}
    assert tags.status_code == 503
