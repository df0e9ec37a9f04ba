"""Public profiles and following (the ``profile`` function)."""

from __future__ import annotations

import pytest

from tests.conftest import Api, ApiFactory


@pytest.fixture
async def profile(api_for: ApiFactory) -> Api:
    return await api_for("profile")


async def test_profile_is_public_and_not_followed_when_anonymous(api: Api, profile: Api) -> None:
    await api.register("bob")

    response = await profile.get("/api/profiles/bob")

    assert response.status_code == 200
    assert response.json() == {"profile": {"username": "bob", "bio": None, "image": None, "following": False}}


async def test_unknown_profile_returns_404(profile: Api) -> None:
    response = await profile.get("/api/profiles/nobody")
    assert response.status_code == 404
    assert response.json() == {"errors": {"profile": ["not found"]}}


async def test_follow_then_unfollow_shows_in_responses_and_later_reads(api: Api, profile: Api) -> None:
    await api.register("bob")
    alice = await api.register("alice")

    followed = await profile.post("/api/profiles/bob/follow", alice)
    assert followed.status_code == 200
    assert followed.json()["profile"]["following"] is True
    assert (await profile.get("/api/profiles/bob", alice)).json()["profile"]["following"] is True
    assert (await profile.get("/api/profiles/bob")).json()["profile"]["following"] is False

    unfollowed = await profile.delete("/api/profiles/bob/follow", alice)
    assert unfollowed.status_code == 200
    assert unfollowed.json()["profile"]["following"] is False
    assert (await profile.get("/api/profiles/bob", alice)).json()["profile"]["following"] is False


async def test_following_twice_is_harmless(api: Api, profile: Api) -> None:
    await api.register("bob")
    alice = await api.register("alice")
    await profile.post("/api/profiles/bob/follow", alice)
    response = await profile.post("/api/profiles/bob/follow", alice)
    assert response.status_code == 200
    assert response.json()["profile"]["following"] is True


async def test_follow_without_token_returns_401_before_404(profile: Api) -> None:
    response = await profile.post("/api/profiles/nobody/follow")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


async def test_follow_unknown_user_returns_404(api: Api, profile: Api) -> None:
    alice = await api.register("alice")
    response = await profile.post("/api/profiles/nobody/follow", alice)
    assert response.status_code == 404
    assert response.json() == {"errors": {"profile": ["not found"]}}


async def test_following_yourself_returns_422(api: Api, profile: Api) -> None:
    alice = await api.register("alice")
    response = await profile.post("/api/profiles/alice/follow", alice)
    assert response.status_code == 422


async def test_profile_shows_a_bio_change_at_once_even_when_cached(api: Api, profile: Api) -> None:
    bob = await api.register("bob")
    assert (await profile.get("/api/profiles/bob")).json()["profile"]["bio"] is None  # now cached

    await api.put("/api/user", bob, json={"user": {"bio": "New bio"}})

    assert (await profile.get("/api/profiles/bob")).json()["profile"]["bio"] == "New bio"


async def test_renamed_user_is_found_under_the_new_name_only(api: Api, profile: Api) -> None:
    bob = await api.register("bob")
    await profile.get("/api/profiles/bob")

    await api.put("/api/user", bob, json={"user": {"username": "robert"}})

    assert (await profile.get("/api/profiles/bob")).status_code == 404
    assert (await profile.get("/api/profiles/robert")).status_code == 200


async def test_profile_function_does_not_serve_article_routes(profile: Api) -> None:
    response = await profile.get("/api/articles")
    assert response.status_code == 404
    assert response.json() == {"errors": {"route": ["not found"]}}
