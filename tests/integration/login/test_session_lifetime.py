"""Access tokens live as long as their session: a frontend that never refreshes stays signed in.

Every signed-in request checks that the session is live, so logout, a reused refresh
token or a password change still cut a session off at once, on every function.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import jwt
import pytest

from quill.auth import tokens
from quill.settings import Settings, use_settings
from tests.conftest import Api, ApiFactory

# A signed-in read on each HTTP function, and through the bundle.
SIGNED_IN_READS = [("login", "/api/user"), ("profile", "/api/profiles/alice"), ("posts", "/api/articles/feed")]


@pytest.fixture(autouse=True)
def _no_leeway(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seconds, not minutes, of waiting: the 5 s allowance for clock skew would hide them."""
    monkeypatch.setattr(tokens, "_LEEWAY_SECONDS", 0)


@pytest.fixture
def lifetimes(
    settings: Settings, settings_factory: Callable[..., Settings]
) -> Callable[..., AbstractContextManager[Settings]]:
    """Install settings with other token lifetimes, keeping this test's Redis prefix."""

    def install(**changes: Any) -> AbstractContextManager[Settings]:
        return use_settings(settings_factory(redis_prefix=settings.redis_prefix, **changes))

    return install


async def _register(api: Api) -> tuple[str, str]:
    response = await api.post(
        "/api/users", json={"user": {"username": "alice", "email": "alice@example.com", "password": "password123"}}
    )
    assert response.status_code == 201, response.text
    return response.json()["user"]["token"], response.headers["x-refresh-token"]


async def _statuses(api_for: ApiFactory, token: str) -> dict[str, int]:
    found = {}
    for function, path in SIGNED_IN_READS:
        found[function] = (await (await api_for(function)).get(path, token)).status_code
        found[f"bundle {path}"] = (await (await api_for("bundle")).get(path, token)).status_code
    return found


def _exp(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["exp"])


async def test_a_token_still_works_after_the_old_access_lifetime_while_its_session_is_live(
    api: Api, api_for: ApiFactory, lifetimes: Callable[..., AbstractContextManager[Settings]]
) -> None:
    with lifetimes(refresh_token_ttl=600):
        token, _ = await _register(api)
        await asyncio.sleep(2.2)
        assert set((await _statuses(api_for, token)).values()) == {200}


async def test_an_access_lifetime_cap_still_expires_tokens_before_the_session(
    api: Api, api_for: ApiFactory, lifetimes: Callable[..., AbstractContextManager[Settings]]
) -> None:
    """The same wait as above with ``ACCESS_TOKEN_TTL=1``: what every frontend got before."""
    with lifetimes(refresh_token_ttl=600, access_token_ttl=1):
        token, _ = await _register(api)
        await asyncio.sleep(2.2)
        assert set((await _statuses(api_for, token)).values()) == {401}


async def test_an_expired_session_gets_401_on_every_function(
    api: Api, api_for: ApiFactory, lifetimes: Callable[..., AbstractContextManager[Settings]]
) -> None:
    with lifetimes(refresh_token_ttl=2):
        token, refresh_token = await _register(api)
        assert set((await _statuses(api_for, token)).values()) == {200}
        await asyncio.sleep(2.5)
        assert set((await _statuses(api_for, token)).values()) == {401}
        refreshed = await api.post("/api/users/refresh", json={"user": {"refreshToken": refresh_token}})
        assert refreshed.status_code == 401


async def test_after_logout_the_same_token_gets_401_on_every_function(api: Api, api_for: ApiFactory) -> None:
    token, _ = await _register(api)
    assert set((await _statuses(api_for, token)).values()) == {200}

    assert (await api.post("/api/users/logout", token)).status_code == 204

    assert set((await _statuses(api_for, token)).values()) == {401}


async def test_a_token_expires_with_its_session_and_a_refresh_extends_both(
    api: Api, settings: Settings, api_for: ApiFactory
) -> None:
    token, refresh_token = await _register(api)
    session_end = time.time() + settings.refresh_token_ttl
    assert abs(_exp(token) - session_end) < 5

    await asyncio.sleep(1.1)
    refreshed = await api.post("/api/users/refresh", json={"user": {"refreshToken": refresh_token}})
    assert refreshed.status_code == 200
    assert _exp(refreshed.json()["user"]["token"]) > _exp(token)

    updated = await api.put("/api/user", token, json={"user": {"bio": "Hi"}})
    assert updated.status_code == 200
    assert _exp(updated.json()["user"]["token"]) == _exp(refreshed.json()["user"]["token"])
    assert set((await _statuses(api_for, updated.json()["user"]["token"])).values()) == {200}
