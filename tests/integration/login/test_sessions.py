"""Refresh tokens, logout and the JWKS (Quill's extensions on ``login``)."""

from __future__ import annotations

import jwt
import pytest

from tests.conftest import Api, ApiFactory


@pytest.fixture
async def login(api_for: ApiFactory) -> Api:
    return await api_for("login")


async def _register(login: Api) -> tuple[str, str]:
    response = await login.post(
        "/api/users", json={"user": {"username": "alice", "email": "alice@example.com", "password": "password123"}}
    )
    return response.json()["user"]["token"], response.headers["x-refresh-token"]


async def test_refresh_returns_a_new_access_token_and_a_new_refresh_token(login: Api) -> None:
    _, refresh_token = await _register(login)

    response = await login.post("/api/users/refresh", json={"user": {"refreshToken": refresh_token}})

    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice"
    assert response.headers["x-refresh-token"] != refresh_token
    assert (await login.get("/api/user", response.json()["user"]["token"])).status_code == 200


async def test_reusing_a_refresh_token_fails_and_revokes_the_session(login: Api) -> None:
    _, first = await _register(login)
    rotated = await login.post("/api/users/refresh", json={"user": {"refreshToken": first}})
    second = rotated.headers["x-refresh-token"]
    access = rotated.json()["user"]["token"]

    replay = await login.post("/api/users/refresh", json={"user": {"refreshToken": first}})

    assert replay.status_code == 401
    assert replay.json() == {"errors": {"token": ["is invalid"]}}
    # The whole session is gone: the legitimate holder's tokens stop working too.
    assert (await login.post("/api/users/refresh", json={"user": {"refreshToken": second}})).status_code == 401
    assert (await login.get("/api/user", access)).status_code == 401


async def test_unknown_refresh_token_returns_401(login: Api) -> None:
    response = await login.post("/api/users/refresh", json={"user": {"refreshToken": "nope"}})
    assert response.status_code == 401


async def test_logout_revokes_access_and_refresh_tokens(login: Api) -> None:
    token, refresh_token = await _register(login)

    response = await login.post("/api/users/logout", token)

    assert response.status_code == 204
    assert response.content == b""
    after = await login.get("/api/user", token)
    assert after.status_code == 401
    assert after.json() == {"errors": {"token": ["is invalid"]}}
    assert (await login.post("/api/users/refresh", json={"user": {"refreshToken": refresh_token}})).status_code == 401


async def test_logout_ends_only_that_session(login: Api) -> None:
    token, _ = await _register(login)
    other = await login.post(
        "/api/users/login", json={"user": {"email": "alice@example.com", "password": "password123"}}
    )

    await login.post("/api/users/logout", token)

    assert (await login.get("/api/user", other.json()["user"]["token"])).status_code == 200


async def test_jwks_publishes_the_key_that_verifies_issued_tokens(login: Api) -> None:
    token, _ = await _register(login)

    response = await login.get("/.well-known/jwks.json")

    assert response.status_code == 200
    keys = response.json()["keys"]
    kid = jwt.get_unverified_header(token)["kid"]
    jwk = next(key for key in keys if key["kid"] == kid)
    assert (jwk["kty"], jwk["crv"], jwk["alg"]) == ("OKP", "Ed25519", "EdDSA")
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(token, public, algorithms=["EdDSA"], audience="quill-api", issuer="quill")
    assert claims["sub"] == "1"
