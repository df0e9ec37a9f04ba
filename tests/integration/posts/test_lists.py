"""Article lists, filters, pagination and the feed."""

from __future__ import annotations

import pytest

from tests.conftest import Api


async def test_list_is_newest_first_without_bodies_and_counts_all_matches(api: Api) -> None:
    alice = await api.register("alice")
    for number in range(5):
        await api.create_article(alice, f"Article {number}")

    response = await api.get("/api/articles?limit=2&offset=1")

    assert response.status_code == 200
    listing = response.json()
    assert listing["articlesCount"] == 5
    assert [article["title"] for article in listing["articles"]] == ["Article 3", "Article 2"]
    assert all("body" not in article for article in listing["articles"])


async def test_list_defaults_to_twenty(api: Api) -> None:
    alice = await api.register("alice")
    for number in range(22):
        await api.create_article(alice, f"Article {number}")

    listing = (await api.get("/api/articles")).json()

    assert len(listing["articles"]) == 20
    assert listing["articlesCount"] == 22


async def test_offset_past_the_end_gives_an_empty_page_and_the_total(api: Api) -> None:
    alice = await api.register("alice")
    await api.create_article(alice)
    listing = (await api.get("/api/articles?offset=10")).json()
    assert listing == {"articles": [], "articlesCount": 1}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=-1",
        "limit=abc",
        "offset=-1",
        "offset=1.5",
        "limit=1e3",
        "limit=%EF%BC%91",
        "offset=x",
        "limit=",
        "offset=",
    ],
)
async def test_bad_paging_values_return_422(api: Api, query: str) -> None:
    response = await api.get(f"/api/articles?{query}")
    assert response.status_code == 422
    assert set(response.json()["errors"]) <= {"limit", "offset"}


async def test_filters_combine_with_and(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    await api.create_article(alice, "Alice dragons", tagList=["dragons"])
    await api.create_article(alice, "Alice cats", tagList=["cats"])
    bob_dragons = await api.create_article(bob, "Bob dragons", tagList=["dragons", "fire"])
    await api.post(f"/api/articles/{bob_dragons['slug']}/favorite", alice)

    def titles(listing: dict[str, list[dict[str, str]]]) -> list[str]:
        return [article["title"] for article in listing["articles"]]

    assert titles((await api.get("/api/articles?tag=dragons")).json()) == ["Bob dragons", "Alice dragons"]
    assert titles((await api.get("/api/articles?author=alice")).json()) == ["Alice cats", "Alice dragons"]
    assert titles((await api.get("/api/articles?tag=dragons&author=alice")).json()) == ["Alice dragons"]
    assert titles((await api.get("/api/articles?favorited=alice")).json()) == ["Bob dragons"]
    assert titles((await api.get("/api/articles?favorited=alice&author=alice")).json()) == []
    combined = (await api.get("/api/articles?tag=fire&author=bob&favorited=alice")).json()
    assert titles(combined) == ["Bob dragons"]
    assert combined["articlesCount"] == 1
    assert (await api.get("/api/articles?author=nobody")).json() == {"articles": [], "articlesCount": 0}


async def test_list_shows_favorited_and_following_for_the_caller(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(bob, "Bob's"))["slug"]
    await api.post(f"/api/articles/{slug}/favorite", alice)
    await api.post("/api/profiles/bob/follow", alice)

    mine = (await api.get("/api/articles", alice)).json()["articles"][0]
    anonymous = (await api.get("/api/articles")).json()["articles"][0]

    assert (mine["favorited"], mine["favoritesCount"], mine["author"]["following"]) == (True, 1, True)
    assert (anonymous["favorited"], anonymous["favoritesCount"], anonymous["author"]["following"]) == (False, 1, False)


async def test_the_callers_flags_follow_each_write_that_changes_them_at_once(api: Api) -> None:
    """The caller's favorites and follows are kept in memory: every write that changes
    them (or renames what they name) must show in the very next read."""
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(bob, "Bob's"))["slug"]

    async def flags() -> tuple[str, bool, bool]:
        first = (await api.get("/api/articles", alice)).json()["articles"][0]
        return first["slug"], first["favorited"], first["author"]["following"]

    assert await flags() == (slug, False, False)  # held from here on
    await api.post("/api/profiles/bob/follow", alice)
    assert await flags() == (slug, False, True)
    await api.post(f"/api/articles/{slug}/favorite", alice)
    assert await flags() == (slug, True, True)
    renamed = (await api.put(f"/api/articles/{slug}", bob, json={"article": {"title": "Renamed"}})).json()
    assert await flags() == (renamed["article"]["slug"], True, True)
    await api.put("/api/user", bob, json={"user": {"username": "robert"}})
    assert await flags() == (renamed["article"]["slug"], True, True)
    await api.delete("/api/profiles/robert/follow", alice)
    await api.delete(f"/api/articles/{renamed['article']['slug']}/favorite", alice)
    assert await flags() == (renamed["article"]["slug"], False, False)


async def test_feed_holds_exactly_the_followed_authors_articles(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    carol = await api.register("carol")
    await api.create_article(carol, "Carol's")
    await api.post("/api/profiles/bob/follow", alice)
    await api.create_article(bob, "Bob one")
    await api.create_article(bob, "Bob two")

    response = await api.get("/api/articles/feed", alice)

    assert response.status_code == 200
    feed = response.json()
    assert feed["articlesCount"] == 2
    assert [article["title"] for article in feed["articles"]] == ["Bob two", "Bob one"]
    assert all(article["author"]["following"] is True for article in feed["articles"])
    assert all("body" not in article for article in feed["articles"])


async def test_feed_paginates_with_the_total(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    await api.post("/api/profiles/bob/follow", alice)
    for number in range(3):
        await api.create_article(bob, f"Bob {number}")

    feed = (await api.get("/api/articles/feed?limit=1&offset=1", alice)).json()

    assert feed["articlesCount"] == 3
    assert [article["title"] for article in feed["articles"]] == ["Bob 1"]


async def test_feed_is_empty_after_unfollow(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    await api.post("/api/profiles/bob/follow", alice)
    await api.create_article(bob)
    await api.delete("/api/profiles/bob/follow", alice)
    assert (await api.get("/api/articles/feed", alice)).json() == {"articles": [], "articlesCount": 0}


async def test_feed_without_token_returns_401(api: Api) -> None:
    response = await api.get("/api/articles/feed")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


async def test_list_path_with_trailing_slash_is_the_list(api: Api) -> None:
    alice = await api.register("alice")
    await api.create_article(alice, "Listed")
    slashed = await api.get("/api/articles/")
    assert slashed.status_code == 200
    assert slashed.json() == (await api.get("/api/articles")).json()


async def test_tag_pages_and_feed_pages_are_exact_slices_of_the_newest_first_order(api: Api) -> None:
    """?tag= alone and the feed bound their candidates by limit + offset: every page must
    still be the same slice of the full newest-first order, across authors."""
    authors = [await api.register(name) for name in ("ann", "ben", "cat")]
    titles: list[tuple[str, bool]] = []  # oldest first: (title, tagged x), by ann/ben/cat in turn
    for number in range(12):
        tagged = number % 3 != 1
        await api.create_article(authors[number % 3], f"T{number}", tagList=["x"] if tagged else ["y"])
        titles.append((f"T{number}", tagged))
    newest_tagged = [title for title, tagged in reversed(titles) if tagged]
    for offset in range(0, 10, 2):
        page = (await api.get(f"/api/articles?tag=x&limit=3&offset={offset}")).json()
        assert [a["title"] for a in page["articles"]] == newest_tagged[offset : offset + 3]
        assert page["articlesCount"] == len(newest_tagged)

    reader = await api.register("reader")
    for name in ("ann", "cat"):
        assert (await api.post(f"/api/profiles/{name}/follow", reader)).status_code == 200
    followed = [f"T{n}" for n in reversed(range(12)) if n % 3 in (0, 2)]
    for offset in range(0, 9, 3):
        page = (await api.get(f"/api/articles/feed?limit=3&offset={offset}", reader)).json()
        assert [a["title"] for a in page["articles"]] == followed[offset : offset + 3]
        assert page["articlesCount"] == len(followed)
