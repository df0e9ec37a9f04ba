"""Favorites, comments and tags."""

from __future__ import annotations

from tests.conftest import Api


async def test_favorite_and_unfavorite_show_in_the_response_and_every_later_read(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(bob))["slug"]
    await api.get(f"/api/articles/{slug}")  # cached before the favorite

    favorited = await api.post(f"/api/articles/{slug}/favorite", alice)

    assert favorited.status_code == 200
    assert (favorited.json()["article"]["favorited"], favorited.json()["article"]["favoritesCount"]) == (True, 1)
    read = (await api.get(f"/api/articles/{slug}", alice)).json()["article"]
    assert (read["favorited"], read["favoritesCount"]) == (True, 1)
    assert (await api.get(f"/api/articles/{slug}")).json()["article"]["favoritesCount"] == 1
    assert [a["slug"] for a in (await api.get("/api/articles?favorited=alice")).json()["articles"]] == [slug]

    unfavorited = await api.delete(f"/api/articles/{slug}/favorite", alice)

    assert (unfavorited.json()["article"]["favorited"], unfavorited.json()["article"]["favoritesCount"]) == (False, 0)
    assert (await api.get(f"/api/articles/{slug}", alice)).json()["article"]["favoritesCount"] == 0
    assert (await api.get("/api/articles?favorited=alice")).json()["articlesCount"] == 0


async def test_favoriting_twice_counts_once_and_unfavoriting_twice_never_goes_negative(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice))["slug"]
    await api.post(f"/api/articles/{slug}/favorite", alice)
    assert (await api.post(f"/api/articles/{slug}/favorite", alice)).json()["article"]["favoritesCount"] == 1
    await api.delete(f"/api/articles/{slug}/favorite", alice)
    assert (await api.delete(f"/api/articles/{slug}/favorite", alice)).json()["article"]["favoritesCount"] == 0


async def test_favorite_unknown_article_returns_404(api: Api) -> None:
    alice = await api.register("alice")
    response = await api.post("/api/articles/nope/favorite", alice)
    assert response.status_code == 404
    assert response.json() == {"errors": {"article": ["not found"]}}


async def test_favorite_without_token_returns_401(api: Api) -> None:
    assert (await api.post("/api/articles/nope/favorite")).status_code == 401


async def test_comments_appear_at_once_and_deleting_one_leaves_the_other(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice))["slug"]

    first = await api.post(f"/api/articles/{slug}/comments", bob, json={"comment": {"body": "First!"}})
    second = await api.post(f"/api/articles/{slug}/comments", alice, json={"comment": {"body": "Thanks"}})

    assert first.status_code == 201
    comment = first.json()["comment"]
    assert isinstance(comment["id"], int)
    assert comment["body"] == "First!"
    assert comment["author"] == {"username": "bob", "bio": None, "image": None, "following": False}
    listed = (await api.get(f"/api/articles/{slug}/comments")).json()["comments"]
    assert [c["body"] for c in listed] == ["Thanks", "First!"]

    deleted = await api.delete(f"/api/articles/{slug}/comments/{comment['id']}", bob)

    assert deleted.status_code == 204
    assert deleted.content == b""
    remaining = (await api.get(f"/api/articles/{slug}/comments")).json()["comments"]
    assert [c["id"] for c in remaining] == [second.json()["comment"]["id"]]


async def test_comment_author_following_is_relative_to_the_caller(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice))["slug"]
    await api.post(f"/api/articles/{slug}/comments", bob, json={"comment": {"body": "Hi"}})
    await api.post("/api/profiles/bob/follow", alice)

    mine = (await api.get(f"/api/articles/{slug}/comments", alice)).json()["comments"][0]
    anonymous = (await api.get(f"/api/articles/{slug}/comments")).json()["comments"][0]

    assert mine["author"]["following"] is True
    assert anonymous["author"]["following"] is False


async def test_deleting_another_users_comment_returns_403(api: Api) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    slug = (await api.create_article(alice))["slug"]
    comment_id = (await api.post(f"/api/articles/{slug}/comments", bob, json={"comment": {"body": "Mine"}})).json()[
        "comment"
    ]["id"]

    response = await api.delete(f"/api/articles/{slug}/comments/{comment_id}", alice)

    assert response.status_code == 403
    assert response.json() == {"errors": {"comment": ["forbidden"]}}
    assert len((await api.get(f"/api/articles/{slug}/comments")).json()["comments"]) == 1


async def test_deleting_unknown_or_malformed_comment_ids_returns_404(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice))["slug"]
    for comment_id in ["999", "abc", "-1", "99999999999999999999999"]:
        response = await api.delete(f"/api/articles/{slug}/comments/{comment_id}", alice)
        assert response.status_code == 404, comment_id
        assert response.json() == {"errors": {"comment": ["not found"]}}


async def test_comment_of_one_article_cannot_be_deleted_through_another(api: Api) -> None:
    alice = await api.register("alice")
    first = (await api.create_article(alice, "First"))["slug"]
    second = (await api.create_article(alice, "Second"))["slug"]
    comment_id = (await api.post(f"/api/articles/{first}/comments", alice, json={"comment": {"body": "x"}})).json()[
        "comment"
    ]["id"]

    assert (await api.delete(f"/api/articles/{second}/comments/{comment_id}", alice)).status_code == 404
    assert len((await api.get(f"/api/articles/{first}/comments")).json()["comments"]) == 1


async def test_comments_of_unknown_article_return_404(api: Api) -> None:
    response = await api.get("/api/articles/nope/comments")
    assert response.status_code == 404
    assert response.json() == {"errors": {"article": ["not found"]}}


async def test_blank_comment_returns_422(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice))["slug"]
    response = await api.post(f"/api/articles/{slug}/comments", alice, json={"comment": {"body": "  "}})
    assert response.status_code == 422
    assert response.json() == {"errors": {"body": ["can't be blank"]}}


async def test_deleting_an_article_deletes_its_comments_and_favorites(api: Api) -> None:
    alice = await api.register("alice")
    slug = (await api.create_article(alice, tagList=["gone"]))["slug"]
    await api.post(f"/api/articles/{slug}/comments", alice, json={"comment": {"body": "x"}})
    await api.post(f"/api/articles/{slug}/favorite", alice)

    await api.delete(f"/api/articles/{slug}", alice)

    assert (await api.get("/api/articles?favorited=alice")).json()["articlesCount"] == 0
    assert "gone" not in (await api.get("/api/tags")).json()["tags"]


async def test_tags_list_every_tag_in_use(api: Api) -> None:
    alice = await api.register("alice")
    for number in range(30):
        await api.create_article(alice, f"Article {number}", tagList=[f"tag{number}", "common"])

    response = await api.get("/api/tags")

    assert response.status_code == 200
    tags = response.json()["tags"]
    assert tags[0] == "common"
    assert set(tags) == {"common", *(f"tag{number}" for number in range(30))}


async def test_duplicate_tags_in_one_article_are_kept_once_in_alphabetical_order(api: Api) -> None:
    alice = await api.register("alice")
    article = await api.create_article(alice, tagList=["b", "a", "b", " a "])
    assert article["tagList"] == ["a", "b"]
