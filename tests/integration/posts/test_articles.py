"""Creating, reading, updating and deleting articles (the ``posts`` function)."""

from __future__ import annotations

import re

import pytest

from tests.conftest import Api, ApiFactory

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


@pytest.fixture
async def posts(api_for: ApiFactory) -> Api:
    return await api_for("posts")


async def test_create_returns_201_with_the_full_article(api: Api, posts: Api) -> None:
    alice = await api.register("alice")

    response = await posts.post(
        "/api/articles",
        alice,
        json={
            "article": {
                "title": "How to train your dragon",
                "description": "Ever wonder how?",
                "body": "You have to believe",
                "tagList": ["reactjs", "angularjs", "dragons"],
            }
        },
    )

    assert response.status_code == 201
    article = response.json()["article"]
    assert article["slug"] == "how-to-train-your-dragon"
    assert article["tagList"] == ["angularjs", "dragons", "reactjs"]  # alphabetical, whatever the order sent
    assert article["body"] == "You have to believe"
    assert article["favorited"] is False
    assert article["favoritesCount"] == 0
    assert article["author"] == {"username": "alice", "bio": None, "image": None, "following": False}
    assert TIMESTAMP.match(article["createdAt"])
    assert article["createdAt"] == article["updatedAt"]


async def test_create_without_tag_list_gives_an_empty_list(api: Api) -> None:
    alice = await api.register("alice")
    article = await api.create_article(alice)
    assert article["tagList"] == []


async def test_duplicate_titles_get_distinct_slugs(api: Api) -> None:
    alice = await api.register("alice")
    first = await api.create_article(alice, "Same title")
    second = await api.create_article(alice, "Same title")

    assert first["slug"] == "same-title"
    assert second["slug"] != first["slug"]
    assert second["slug"].startswith("same-title-")
    assert (await api.get(f"/api/articles/{second['slug']}")).json()["article"]["slug"] == second["slug"]


@pytest.mark.parametrize("title", ["feed", "Feed", "FEED!"])
async def test_no_article_gets_the_slug_feed(api: Api, title: str) -> None:
    alice = await api.register("alice")
    article = await api.create_article(alice, title)
    assert article["slug"] != "feed"
    assert (await api.get(f"/api/articles/{article['slug']}")).status_code == 200


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Ünïcode ünd Ümlauts", "ünïcode-ünd-ümlauts"),
        ("日本語のタイトル", "日本語のタイトル"),
        ("!!!", "article"),
        ("'; DROP TABLE articles; --", "drop-table-articles"),
    ],
)
async def test_slugs_keep_letters_and_drop_punctuation(api: Api, title: str, expected: str) -> None:
    alice = await api.register("alice")
    article = await api.create_article(alice, title)
    assert article["slug"] == expected
    assert (await api.get(f"/api/articles/{article['slug']}")).json()["article"]["title"] == title


async def test_get_returns_the_article_to_anyone(api: Api, posts: Api) -> None:
    alice = await api.register("alice")
    created = await api.create_article(alice, "Readable", tagList=["b", "a"])

    response = await posts.get(f"/api/articles/{created['slug']}")

    assert response.status_code == 200
    assert response.json()["article"] == created


async def test_get_unknown_slug_returns_404(posts: Api) -> None:
    response = await posts.get("/api/articles/no-such-article")
    assert response.status_code == 404
    assert response.json() == {"errors": {"article": ["not found"]}}


async def test_update_body_keeps_slug_and_created_at_and_moves_updated_at(api: Api) -> None:
    alice = await api.register("alice")
    created = await api.create_article(alice, "Stable slug")

    response = await api.put(f"/api/articles/{created['slug']}", alice, json={"article": {"body": "New body"}})

    assert response.status_code == 200
    updated = response.json()["article"]
    assert updated["slug"] == created["slug"]
    assert updated["body"] == "New body"
    assert updated["createdAt"] == created["createdAt"]
    assert updated["updatedAt"] > created["updatedAt"]
    assert (await api.get(f"/api/articles/{created['slug']}")).json()["article"]["body"] == "New body"


async def test_update_title_gives_a_new_slug_and_the_old_one_is_gone(api: Api) -> None:
    alice = await api.register("alice")
    created = await api.create_article(alice, "Old title")

    response = await api.put(f"/api/articles/{created['slug']}", alice, json={"article": {"title": "New title"}})

    assert response.json()["article"]["slug"] == "new-title"
    assert (await api.get("/api/articles/new-title")).status_code == 200
    assert (await api.get(f"/api/articles/{created['slug']}")).status_code == 404


async def test_update_tag_list_rules(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Tagged", tagList=["one", "two"]))["slug"]
    path = f"/api/articles/{slug}"

    kept = await api.put(path, alice, json={"article": {"body": "b2"}})
    assert kept.json()["article"]["tagList"] == ["one", "two"]

    reordered = await api.put(path, alice, json={"article": {"tagList": ["three", "one"]}})
    assert reordered.json()["article"]["tagList"] == ["one", "three"]
    assert "two" not in (await api.get("/api/tags")).json()["tags"]

    cleared = await api.put(path, alice, json={"article": {"tagList": []}})
    assert cleared.json()["article"]["tagList"] == []

    null = await api.put(path, alice, json={"article": {"tagList": None}})
    assert null.status_code == 422
    assert "tagList" in null.json()["errors"]


async def test_update_by_another_user_returns_403_and_changes_nothing(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice, "Mine"))["slug"]

    response = await api.put(f"/api/articles/{slug}", bob, json={"article": {"body": "Hijacked"}})

    assert response.status_code == 403
    assert response.json() == {"errors": {"article": ["forbidden"]}}
    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["body"] == "The body"


async def test_delete_by_another_user_returns_403(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice, "Mine"))["slug"]

    response = await api.delete(f"/api/articles/{slug}", bob)

    assert response.status_code == 403
    assert (await api.get(f"/api/articles/{slug}")).status_code == 200


async def test_delete_returns_204_then_the_article_is_gone(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Short lived"))["slug"]
    await api.get(f"/api/articles/{slug}")  # cached

    response = await api.delete(f"/api/articles/{slug}", alice)

    assert response.status_code == 204
    assert response.content == b""
    assert (await api.get(f"/api/articles/{slug}")).status_code == 404


@pytest.mark.parametrize(
    ("article", "field"),
    [
        ({"description": "d", "body": "b"}, "title"),
        ({"title": "", "description": "d", "body": "b"}, "title"),
        ({"title": "t", "body": "b"}, "description"),
        ({"title": "t", "description": "d"}, "body"),
        ({"title": "t", "description": "d", "body": "b", "tagList": "notalist"}, "tagList"),
        ({"title": "t", "description": "d", "body": "b", "tagList": [1, 2]}, "tagList"),
        ({"title": "t", "description": "d", "body": "b", "tagList": None}, "tagList"),
        ({"title": ["t"], "description": "d", "body": "b"}, "title"),
        ({"title": "t" * 257, "description": "d", "body": "b"}, "title"),
    ],
)
async def test_create_with_bad_fields_returns_422_and_creates_nothing(
    api: Api, article: dict[str, object], field: str
) -> None:
    alice = await api.register("alice")

    response = await api.post("/api/articles", alice, json={"article": article})

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert (await api.get("/api/articles")).json()["articlesCount"] == 0


async def test_create_without_token_returns_401(posts: Api) -> None:
    response = await posts.post("/api/articles", json={"article": {"title": "t", "description": "d", "body": "b"}})
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


class TestErrorPrecedence:
    """401, then 404, then 403, then 422."""

    async def test_no_token_and_unknown_slug_is_401(self, api: Api) -> None:
        response = await api.put("/api/articles/nope", json={"article": {"title": None}})
        assert response.status_code == 401

    async def test_unknown_slug_and_invalid_body_is_404(self, api: Api) -> None:
        alice = await api.register("alice")
        response = await api.put("/api/articles/nope", alice, content=b"{not json")
        assert response.status_code == 404

    async def test_foreign_article_and_invalid_body_is_403(self, api: Api) -> None:
        alice = await api.register("alice")
        bob = await api.register("bob")
        slug = (await api.create_article(alice))["slug"]
        response = await api.put(f"/api/articles/{slug}", bob, json={"article": {"tagList": None}})
        assert response.status_code == 403

    async def test_own_article_and_invalid_body_is_422(self, api: Api) -> None:
        alice = await api.register("alice")
        slug = (await api.create_article(alice))["slug"]
        response = await api.put(f"/api/articles/{slug}", alice, json={"article": {"tagList": None}})
        assert response.status_code == 422

    async def test_comment_on_unknown_article_with_invalid_body_is_404(self, api: Api) -> None:
        alice = await api.register("alice")
        response = await api.post("/api/articles/nope/comments", alice, json={"comment": {}})
        assert response.status_code == 404

    async def test_feed_with_bad_limit_and_no_token_is_401(self, api: Api) -> None:
        response = await api.get("/api/articles/feed?limit=abc")
        assert response.status_code == 401


async def test_retitling_to_a_prefix_of_the_old_title_gets_its_own_slug(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "abcde Worlds"))["slug"]
    response = await api.put(f"/api/articles/{slug}", alice, json={"article": {"title": "abcde"}})
    assert response.json()["article"]["slug"] == "abcde"


async def test_retitling_with_only_a_case_change_keeps_the_slug(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Case matters"))["slug"]
    response = await api.put(f"/api/articles/{slug}", alice, json={"article": {"title": "CASE MATTERS"}})
    assert response.json()["article"]["slug"] == slug


async def test_a_signed_in_reader_sees_an_article_deleted_through_quill_gone_at_once(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice, "Vanishing"))["slug"]
    await api.post(f"/api/articles/{slug}/favorite", bob)
    for _ in range(2):  # cached, then held as bob reads it (flags from his marks)
        shown = await api.get(f"/api/articles/{slug}", bob)
        assert shown.json()["article"]["favorited"] is True

    assert (await api.delete(f"/api/articles/{slug}", alice)).status_code == 204

    assert (await api.get(f"/api/articles/{slug}", bob)).status_code == 404
    assert (await api.get(f"/api/articles/{slug}")).status_code == 404


async def test_a_cached_article_deleted_behind_the_cache_is_404_when_flags_come_from_postgres(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A viewer with too many marks to keep has an article's flags read from PostgreSQL:
    that read also finds an article deleted without Quill, and drops the stale view.
    (With the marks in memory, such a view is served like the anonymous one, until a write
    through Quill or ``CACHE_TTL`` drops it: PostgreSQL changed behind Quill is not seen.)"""
    import psycopg

    from quill.reads import articles as article_reads
    from quill.settings import get_settings

    monkeypatch.setattr(article_reads, "MAX_MARKS", 0)
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice, "Vanishing"))["slug"]
    await api.post("/api/profiles/alice/follow", bob)  # one mark: more than bob's zero kept
    await api.get(f"/api/articles/{slug}")  # cached
    with psycopg.connect(get_settings().database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM articles WHERE slug = %s", (slug,))

    response = await api.get(f"/api/articles/{slug}", bob)

    assert response.status_code == 404
    assert (await api.get(f"/api/articles/{slug}")).status_code == 404  # the stale view was dropped


@pytest.mark.parametrize("encoded", ["%3Fx", "%23x"])
async def test_a_percent_encoded_question_mark_or_hash_is_part_of_the_slug(api: Api, encoded: str) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, "Plain"))["slug"]
    response = await api.get(f"/api/articles/{slug}{encoded}")
    assert response.status_code == 404, "the path was cut at the decoded character"
    assert response.json() == {"errors": {"article": ["not found"]}}
