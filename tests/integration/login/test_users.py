"""Registration, login, the current user and its updates (the ``login`` function)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from quill.settings import Settings
from tests.conftest import Api, ApiFactory


def new_user(name: str = "alice", **changes: Any) -> dict[str, Any]:
    user = {"username": name, "email": f"{name}@example.com", "password": "password123"}
    user.update(changes)
    return {"user": user}


@pytest.fixture
async def login(api_for: ApiFactory) -> Api:
    return await api_for("login")


async def test_register_returns_201_with_user_and_token(login: Api) -> None:
    response = await login.post("/api/users", json=new_user())

    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    user = response.json()["user"]
    assert user["username"] == "alice"
    assert user["email"] == "alice@example.com"
    assert user["bio"] is None
    assert user["image"] is None
    assert user["token"].count(".") == 2
    assert set(user) == {"email", "token", "username", "bio", "image"}


async def test_register_with_a_64_character_password_is_accepted(login: Api) -> None:
    response = await login.post("/api/users", json=new_user(password="p" * 64))
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("user", "field", "message"),
    [
        ({"email": "a@example.com", "password": "password123"}, "username", "can't be blank"),
        ({"username": "", "email": "a@example.com", "password": "password123"}, "username", "can't be blank"),
        ({"username": "   ", "email": "a@example.com", "password": "password123"}, "username", "can't be blank"),
        ({"username": "a", "password": "password123"}, "email", "can't be blank"),
        ({"username": "a", "email": "a@example.com"}, "password", "can't be blank"),
        ({"username": "a", "email": "a@example.com", "password": "short"}, "password", "is too short"),
        ({"username": "a", "email": "not-an-email", "password": "password123"}, "email", "is invalid"),
        ({"username": 5, "email": "a@example.com", "password": "password123"}, "username", "must be a string"),
        ({"username": "a/b", "email": "a@example.com", "password": "password123"}, "username", "is invalid"),
        ({"username": "a" * 65, "email": "a@example.com", "password": "password123"}, "username", "is too long"),
    ],
)
async def test_register_with_bad_fields_returns_422(login: Api, user: dict[str, Any], field: str, message: str) -> None:
    response = await login.post("/api/users", json={"user": user})

    assert response.status_code == 422
    assert any(entry.startswith(message) for entry in response.json()["errors"][field])
    assert (
        await login.post("/api/users/login", json={"user": {"email": "a@example.com", "password": "x"}})
    ).status_code == 401


async def test_register_twice_with_the_same_username_returns_409(login: Api) -> None:
    assert (await login.post("/api/users", json=new_user())).status_code == 201

    response = await login.post("/api/users", json=new_user(email="other@example.com"))

    assert response.status_code == 409
    assert response.json() == {"errors": {"username": ["has already been taken"]}}


async def test_register_with_a_taken_email_in_other_case_returns_409(login: Api) -> None:
    assert (await login.post("/api/users", json=new_user())).status_code == 201

    response = await login.post("/api/users", json=new_user("bob", email="ALICE@example.com"))

    assert response.status_code == 409
    assert response.json() == {"errors": {"email": ["has already been taken"]}}


async def test_register_with_username_differing_only_in_case_returns_409(login: Api) -> None:
    assert (await login.post("/api/users", json=new_user())).status_code == 201
    response = await login.post("/api/users", json=new_user("ALICE", email="a2@example.com"))
    assert response.status_code == 409


async def test_login_returns_the_user_with_a_working_token(login: Api) -> None:
    await login.post("/api/users", json=new_user())

    response = await login.post(
        "/api/users/login", json={"user": {"email": "alice@example.com", "password": "password123"}}
    )

    assert response.status_code == 200
    token = response.json()["user"]["token"]
    me = await login.get("/api/user", token)
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "alice"
    assert me.json()["user"]["token"] == token


@pytest.mark.parametrize(
    "credentials",
    [
        {"email": "alice@example.com", "password": "wrong-password"},
        {"email": "nobody@example.com", "password": "password123"},
    ],
)
async def test_login_with_wrong_credentials_returns_401(login: Api, credentials: dict[str, str]) -> None:
    await login.post("/api/users", json=new_user())

    response = await login.post("/api/users/login", json={"user": credentials})

    assert response.status_code == 401
    assert response.json() == {"errors": {"credentials": ["invalid"]}}


async def test_login_without_email_returns_422(login: Api) -> None:
    response = await login.post("/api/users/login", json={"user": {"password": "password123"}})
    assert response.status_code == 422
    assert response.json() == {"errors": {"email": ["can't be blank"]}}


async def test_current_user_without_token_returns_401_missing(login: Api) -> None:
    response = await login.get("/api/user")
    assert response.status_code == 401
    assert response.json() == {"errors": {"token": ["is missing"]}}


async def test_bearer_scheme_is_accepted_too(login: Api) -> None:
    token = await login.register("alice")
    response = await login.get("/api/user", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200


async def test_update_user_changes_fields_and_returns_a_working_token(login: Api) -> None:
    token = await login.register("alice")

    response = await login.put(
        "/api/user",
        token,
        json={"user": {"username": "alicia", "email": "alicia@example.com", "bio": "Hi", "image": "https://i/a.png"}},
    )

    assert response.status_code == 200
    user = response.json()["user"]
    assert (user["username"], user["email"], user["bio"], user["image"]) == (
        "alicia",
        "alicia@example.com",
        "Hi",
        "https://i/a.png",
    )
    me = await login.get("/api/user", user["token"])
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "alicia"


async def test_the_current_user_read_after_an_update_shows_it(login: Api) -> None:
    """``GET /api/user`` is kept in memory after the first read; an update drops it."""
    token = await login.register("alice")
    for _ in range(2):
        assert (await login.get("/api/user", token)).json()["user"]["bio"] is None

    await login.put("/api/user", token, json={"user": {"bio": "Changed"}})

    assert (await login.get("/api/user", token)).json()["user"]["bio"] == "Changed"


async def test_update_user_with_empty_bio_and_null_image_stores_null(login: Api) -> None:
    token = await login.register("alice")
    await login.put("/api/user", token, json={"user": {"bio": "Hi", "image": "x"}})

    response = await login.put("/api/user", token, json={"user": {"bio": "", "image": None}})

    assert response.status_code == 200
    assert response.json()["user"]["bio"] is None
    assert response.json()["user"]["image"] is None


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"username": ""}, "username"), ({"email": None}, "email"), ({"password": "short"}, "password")],
)
async def test_update_user_with_blank_identity_or_short_password_returns_422(
    login: Api, changes: dict[str, Any], field: str
) -> None:
    token = await login.register("alice")

    response = await login.put("/api/user", token, json={"user": changes})

    assert response.status_code == 422
    assert field in response.json()["errors"]
    assert (await login.get("/api/user", token)).json()["user"]["username"] == "alice"


async def test_update_user_to_a_taken_username_returns_409(login: Api) -> None:
    await login.register("bob")
    token = await login.register("alice")

    response = await login.put("/api/user", token, json={"user": {"username": "bob"}})

    assert response.status_code == 409
    assert response.json() == {"errors": {"username": ["has already been taken"]}}


async def test_update_password_then_login_with_the_new_one(login: Api) -> None:
    token = await login.register("alice", password="first-password")
    assert (await login.put("/api/user", token, json={"user": {"password": "second-password"}})).status_code == 200

    old = await login.post(
        "/api/users/login", json={"user": {"email": "alice@example.com", "password": "first-password"}}
    )
    new = await login.post(
        "/api/users/login", json={"user": {"email": "alice@example.com", "password": "second-password"}}
    )

    assert old.status_code == 401
    assert new.status_code == 200


async def test_keeping_own_username_and_email_is_not_a_conflict(login: Api) -> None:
    token = await login.register("alice")
    response = await login.put("/api/user", token, json={"user": {"username": "alice", "email": "alice@example.com"}})
    assert response.status_code == 200


@pytest.mark.parametrize("password", ["", None])
async def test_an_empty_or_null_password_in_an_update_is_422_and_changes_nothing(
    login: Api, password: str | None
) -> None:
    token = await login.register("alice", password="first-password")

    response = await login.put("/api/user", token, json={"user": {"bio": "New", "password": password}})

    assert response.status_code == 422
    assert response.json() == {"errors": {"password": ["can't be blank"]}}
    assert (await login.get("/api/user", token)).json()["user"]["bio"] is None
    again = await login.post(
        "/api/users/login", json={"user": {"email": "alice@example.com", "password": "first-password"}}
    )
    assert again.status_code == 200


async def test_an_update_without_a_password_keeps_it(login: Api) -> None:
    token = await login.register("alice", password="first-password")

    assert (await login.put("/api/user", token, json={"user": {"bio": "New"}})).status_code == 200

    again = await login.post(
        "/api/users/login", json={"user": {"email": "alice@example.com", "password": "first-password"}}
    )
    assert again.status_code == 200


async def test_a_new_password_ends_every_other_session_but_not_the_callers(login: Api) -> None:
    mine = await login.register("alice", password="first-password")
    other = (
        await login.post(
            "/api/users/login", json={"user": {"email": "alice@example.com", "password": "first-password"}}
        )
    ).json()["user"]["token"]
    assert (await login.get("/api/user", other)).status_code == 200

    changed = await login.put("/api/user", mine, json={"user": {"password": "second-password"}})

    assert changed.status_code == 200
    assert (await login.get("/api/user", changed.json()["user"]["token"])).status_code == 200
    assert (await login.get("/api/user", mine)).status_code == 200
    assert (await login.get("/api/user", other)).status_code == 401


async def test_an_account_stored_before_the_username_rules_can_still_save_its_settings(
    login: Api, settings: Settings
) -> None:
    """Frontends send the whole settings form back, username included: an unchanged name is no change."""
    token = await login.register("legacy")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute("UPDATE users SET username = %s WHERE username = 'legacy'", ("leg\u200bacy",))
    form = {"username": "leg\u200bacy", "email": "legacy@example.com", "bio": "Still here", "image": None}

    response = await login.put("/api/user", token, json={"user": form})

    assert response.status_code == 200, response.text
    assert response.json()["user"]["bio"] == "Still here"
    renamed = await login.put("/api/user", token, json={"user": {**form, "username": "new\u200bname"}})
    assert renamed.status_code == 422
