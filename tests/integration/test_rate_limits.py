"""Rate limits in Redis: login per account and per address, writes per user."""

from __future__ import annotations

from typing import Any

from quill.settings import RateLimit, use_settings
from tests.conftest import Api


def _login(email: str, password: str) -> dict[str, Any]:
    return {"user": {"email": email, "password": password}}


async def test_failed_logins_for_one_account_are_throttled_with_retry_after(api: Api, settings_factory: Any) -> None:
    await api.register("alice")
    with use_settings(settings_factory(login_per_account=RateLimit(3, 60))):
        statuses = [
            (await api.post("/api/users/login", json=_login("alice@example.com", "wrong-password"))).status_code
            for _ in range(3)
        ]
        blocked = await api.post("/api/users/login", json=_login("ALICE@example.com", "correct horse battery"))
        other = await api.post("/api/users/login", json=_login("bob@example.com", "wrong-password"))

    assert statuses == [401, 401, 401]
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["retry-after"]) <= 60
    assert "errors" in blocked.json()
    assert other.status_code == 401  # another account is not affected


async def test_a_successful_login_resets_the_account_counter(api: Api, settings_factory: Any) -> None:
    await api.register("alice")
    with use_settings(settings_factory(login_per_account=RateLimit(3, 60))):
        for _ in range(2):
            await api.post("/api/users/login", json=_login("alice@example.com", "wrong-password"))
        assert (
            await api.post("/api/users/login", json=_login("alice@example.com", "correct horse battery"))
        ).status_code == 200
        for _ in range(2):
            await api.post("/api/users/login", json=_login("alice@example.com", "wrong-password"))
        assert (
            await api.post("/api/users/login", json=_login("alice@example.com", "correct horse battery"))
        ).status_code == 200


async def test_the_account_limit_ends_with_its_window(api: Api, settings_factory: Any) -> None:
    import asyncio

    await api.register("alice")
    with use_settings(settings_factory(login_per_account=RateLimit(1, 1))):
        await api.post("/api/users/login", json=_login("alice@example.com", "wrong-password"))
        assert (
            await api.post("/api/users/login", json=_login("alice@example.com", "correct horse battery"))
        ).status_code == 429
        await asyncio.sleep(2.1)
        assert (
            await api.post("/api/users/login", json=_login("alice@example.com", "correct horse battery"))
        ).status_code == 200


async def test_login_attempts_per_address_are_throttled(api: Api, settings_factory: Any) -> None:
    with use_settings(settings_factory(login_per_ip=RateLimit(5, 60))):
        statuses = [
            (await api.post("/api/users/login", json=_login(f"user{n}@example.com", "whatever1"))).status_code
            for n in range(6)
        ]
    assert statuses == [401] * 5 + [429]


async def test_writes_per_user_are_throttled_but_reads_are_not(api: Api, settings_factory: Any) -> None:
    alice = await api.register("alice")
    bob = await api.register("bob")
    with use_settings(settings_factory(writes_per_user=RateLimit(2, 60))):
        first = await api.create_article(alice, "One")
        await api.create_article(alice, "Two")
        third = await api.post(
            "/api/articles", alice, json={"article": {"title": "3", "description": "d", "body": "b"}}
        )
        read = await api.get(f"/api/articles/{first['slug']}", alice)
        bob_writes = await api.post(
            "/api/articles", bob, json={"article": {"title": "B", "description": "d", "body": "b"}}
        )

    assert third.status_code == 429
    assert "retry-after" in third.headers
    assert read.status_code == 200
    assert bob_writes.status_code == 201
    assert (await api.get("/api/articles?author=alice")).json()["articlesCount"] == 2


async def test_client_address_comes_from_forwarded_for_only_when_proxies_are_trusted(
    api: Api, settings_factory: Any
) -> None:
    with use_settings(settings_factory(login_per_ip=RateLimit(1, 60), trusted_proxy_hops=1)):
        first = await api.post(
            "/api/users/login", json=_login("a@example.com", "whatever1"), headers={"X-Forwarded-For": "198.51.100.1"}
        )
        second = await api.post(
            "/api/users/login", json=_login("a@example.com", "whatever1"), headers={"X-Forwarded-For": "198.51.100.2"}
        )
        repeat = await api.post(
            "/api/users/login", json=_login("a@example.com", "whatever1"), headers={"X-Forwarded-For": "198.51.100.1"}
        )
    assert (first.status_code, second.status_code, repeat.status_code) == (401, 401, 429)
