"""A blog platform's mixed traffic: many virtual users, mostly reads, some writes, think time.

Each virtual user signs in once, then loops: pick an action by weight, send it, record
its latency and outcome, wait ``think`` seconds. The same scenario ships for clusters
as ``infra/loadtest/mixed.js`` (k6).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

from quill_tools.bench.harness import summary
from quill_tools.bench.loadgen import Request

__all__ = ["ACTIONS", "ANONYMOUS_ACTIONS", "MixedResult", "mixed", "request", "seed"]

# (name, weight): ~90% reads, ~10% writes.
ACTIONS: tuple[tuple[str, int], ...] = (
    ("list", 35),
    ("article", 25),
    ("profile", 10),
    ("feed", 10),
    ("tags", 5),
    ("tag_filter", 5),
    ("favorite", 4),
    ("comment", 3),
    ("create", 2),
    ("follow", 1),
)


@dataclass
class MixedResult:
    requests: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    by_action: dict[str, list[float]] = field(default_factory=dict)
    error_samples: list[str] = field(default_factory=list)

    def record(self, action: str, seconds: float, ok: bool, detail: str = "") -> None:
        self.requests += 1
        self.latencies_ms.append(seconds * 1000)
        self.by_action.setdefault(action, []).append(seconds * 1000)
        if not ok:
            self.errors += 1
            if len(self.error_samples) < 20:
                self.error_samples.append(f"{action}: {detail}")

    def report(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "latency_ms": summary(self.latencies_ms),
            "by_action_p95_ms": {name: summary(values)["p95"] for name, values in sorted(self.by_action.items())},
            "error_samples": self.error_samples,
        }


async def seed(
    base_url: str, users: int, articles_per_user: int, follows: int = 0, *, prefix: str = "user"
) -> list[dict[str, str]]:
    """Register ``users`` accounts with a few articles each, each following the ``follows``
    accounts after it (wrapping round), so that a feed has a page to show; return their
    tokens and slugs. Usernames are ``prefix`` and a number: a server seeded before (one
    that is not Quill's scratch database) takes a new prefix."""
    accounts: list[dict[str, str]] = []
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        for number in range(users):
            name = f"{prefix}{number}"
            response = await client.post(
                "/api/users",
                json={"user": {"username": name, "email": f"{name}@example.com", "password": "password123"}},
            )
            response.raise_for_status()
            token = response.json()["user"]["token"]
            slugs: list[str] = []
            for article in range(articles_per_user):
                created = await client.post(
                    "/api/articles",
                    headers={"Authorization": f"Token {token}"},
                    json={
                        "article": {
                            "title": f"{name} on topic {article}",
                            "description": "A seeded article",  # 10+ characters: some backends ask it
                            "body": "Lorem ipsum " * 20,
                            "tagList": [f"topic{article % 5}", "seed"],
                        }
                    },
                )
                created.raise_for_status()
                slugs.append(created.json()["article"]["slug"])
            # "slug": the account's newest article; "slugs": all of them, space-separated.
            accounts.append(
                {"username": name, "token": token, "slug": slugs[-1] if slugs else "", "slugs": " ".join(slugs)}
            )
        for number, account in enumerate(accounts):
            for step in range(1, min(follows, users - 1) + 1):
                followed = accounts[(number + step) % users]["username"]
                response = await client.post(
                    f"/api/profiles/{followed}/follow", headers={"Authorization": f"Token {account['token']}"}
                )
                response.raise_for_status()
    return accounts


# What an anonymous visitor of a RealWorld frontend does: it reads, and cannot write or see a feed.
ANONYMOUS_ACTIONS: tuple[tuple[str, int], ...] = tuple(
    (name, weight) for name, weight in ACTIONS if name in {"list", "article", "profile", "tags", "tag_filter"}
)


def request(
    action: str, me: dict[str, str] | None, other: dict[str, str], *, flip: bool, signed_in: bool = False
) -> Request:
    """One action of the scenario, as ``me`` acting on ``other`` (never the same account for a
    follow); ``flip`` picks POST or DELETE for the toggles. "{n}" in a body becomes a number
    unique to the run. Both the wrk plan (``quill bench mixed``) and ``mixed`` below send these.

    ``me=None`` is an anonymous visitor: no token on anything. ``signed_in`` is a signed-in
    frontend, which sends its token on every request, the lists included; without it, the
    original mix: lists anonymous, the rest as ``me``."""
    auth: tuple[tuple[str, str], ...] = () if me is None else (("Authorization", f"Token {me['token']}"),)
    listing = auth if signed_in else ()
    toggle = "POST" if flip else "DELETE"
    if action == "list":
        return Request("GET", "/api/articles?limit=20", listing)
    if action == "article":
        return Request("GET", f"/api/articles/{other['slug']}", auth)
    if action == "profile":
        return Request("GET", f"/api/profiles/{other['username']}", auth)
    if action == "feed":
        return Request("GET", "/api/articles/feed", auth)
    if action == "tags":
        return Request("GET", "/api/tags", listing)
    if action == "tag_filter":
        return Request("GET", "/api/articles?tag=topic1&limit=20", listing)
    if action == "favorite":
        return Request(toggle, f"/api/articles/{other['slug']}/favorite", auth)
    if action == "comment":
        body = json.dumps({"comment": {"body": "Nice post"}})
        return Request("POST", f"/api/articles/{other['slug']}/comments", auth, body)
    if action == "create":
        body = json.dumps({"article": {"title": "Fresh {n}", "description": "d", "body": "b", "tagList": ["fresh"]}})
        return Request("POST", "/api/articles", auth, body)
    if action == "follow":
        return Request(toggle, f"/api/profiles/{other['username']}/follow", auth)
    raise ValueError(f"unknown action {action!r}")


async def _act(client: httpx.AsyncClient, action: str, me: dict[str, str], other: dict[str, str]) -> httpx.Response:
    sent = request(action, me, other, flip=random.random() < 0.5)  # noqa: S311 - load shape, not security
    headers = dict(sent.headers)
    body = sent.body.replace("{n}", str(time.monotonic_ns())) if sent.body else None
    if body is not None:
        headers["Content-Type"] = "application/json"
    return await client.request(sent.method, sent.path, headers=headers, content=body)


async def mixed(
    base_url: str, accounts: list[dict[str, str]], *, users: int, seconds: float, think: float = 1.0
) -> MixedResult:
    result = MixedResult()
    names = [name for name, _ in ACTIONS]
    weights = [weight for _, weight in ACTIONS]
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=users, max_keepalive_connections=users)

    async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:

        async def virtual_user(number: int) -> None:
            rng = random.Random(number)  # noqa: S311
            me = accounts[number % len(accounts)]
            await asyncio.sleep(rng.random() * think)  # spread the start
            while time.monotonic() < deadline:
                action = rng.choices(names, weights)[0]
                other = accounts[rng.randrange(len(accounts))]
                if action == "follow" and other is me:
                    action = "list"
                started = time.perf_counter()
                try:
                    response = await _act(client, action, me, other)
                    ok = response.status_code < 400
                    detail = f"HTTP {response.status_code} {response.text[:100]}"
                except httpx.HTTPError as exc:
                    ok, detail = False, f"{type(exc).__name__}: {exc}"
                result.record(action, time.perf_counter() - started, ok, detail)
                await asyncio.sleep(think)

        await asyncio.gather(*(virtual_user(number) for number in range(users)))
    return result
