"""Every API path answers identically with a trailing slash: same status, same body, no redirect.

Widely used RealWorld frontends send ``POST /api/articles/``. The same scenario, which
calls every route of the contract, runs four times: through the bundle and through each
route's own function, without and with the trailing slash. The four transcripts must be
equal once the values that differ by nature (names, ids, times, tokens) are masked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import Api, ApiFactory

_OWNERS = (("/api/users", "login"), ("/api/user", "login"), ("/api/profiles/", "profile"), ("/api/", "posts"))
_MASKS = (
    (re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+"), "<token>"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"), "<time>"),
    (re.compile(r'"id":\d+'), '"id":0'),
)


def _owner(path: str) -> str:
    return next(function for prefix, function in _OWNERS if path.startswith(prefix))


@dataclass
class _Run:
    """One pass of the scenario: which clients, which path form, and what came back."""

    name: str
    slash: bool
    clients: dict[str, Api]
    transcript: list[tuple[str, int, str]] = field(default_factory=list)

    async def call(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        route, _, query = path.partition("?")
        sent = route + ("/" if self.slash else "") + (f"?{query}" if query else "")
        client = self.clients.get(_owner(route)) or self.clients["bundle"]
        response = await client.request(method, sent, token, json=body)
        text = response.text.replace(self.name, "<run>")
        for pattern, mask in _MASKS:
            text = pattern.sub(mask, text)
        step = re.sub(r"/comments/\d+", "/comments/{id}", f"{method} {path}".replace(self.name, "<run>"))
        self.transcript.append((step, response.status_code, text))
        return response.json() if response.content else None


async def _scenario(run: _Run) -> None:
    """Every route of the RealWorld contract, plus the session extensions, in a working order."""
    a, b, title = f"a{run.name}", f"b{run.name}", f"Post {run.name}"
    slug = f"post-{run.name}"
    user = {"user": {"username": a, "email": f"{a}@example.com", "password": "password123"}}
    alice = (await run.call("POST", "/api/users", body=user))["user"]["token"]
    bob_user = {"user": {"username": b, "email": f"{b}@example.com", "password": "password123"}}
    bob = (await run.call("POST", "/api/users", body=bob_user))["user"]["token"]
    credentials = {"user": {"email": f"{a}@example.com", "password": "password123"}}
    await run.call("POST", "/api/users/login", body=credentials)
    await run.call("GET", "/api/user", alice)
    await run.call("PUT", "/api/user", alice, {"user": {"bio": "I write"}})
    await run.call("GET", f"/api/profiles/{a}")
    await run.call("POST", f"/api/profiles/{a}/follow", bob)
    await run.call("DELETE", f"/api/profiles/{a}/follow", bob)
    await run.call("POST", f"/api/profiles/{a}/follow", bob)
    article = {"title": title, "description": "d", "body": "b", "tagList": [f"t{run.name}", "slash"]}
    await run.call("POST", "/api/articles", alice, {"article": article})
    await run.call("GET", f"/api/articles?author={a}")
    await run.call("GET", "/api/articles/feed", bob)
    await run.call("GET", f"/api/articles/{slug}", bob)
    await run.call("PUT", f"/api/articles/{slug}", alice, {"article": {"body": "new body"}})
    await run.call("POST", f"/api/articles/{slug}/favorite", bob)
    await run.call("DELETE", f"/api/articles/{slug}/favorite", bob)
    comment = await run.call("POST", f"/api/articles/{slug}/comments", bob, {"comment": {"body": "Nice"}})
    await run.call("GET", f"/api/articles/{slug}/comments")
    await run.call("DELETE", f"/api/articles/{slug}/comments/{comment['comment']['id']}", bob)
    tags = await run.call("GET", "/api/tags")
    assert f"t{run.name}" in tags["tags"]
    run.transcript[-1] = (*run.transcript[-1][:2], "<tags>")  # every run's tags are there: compared above
    await run.call("DELETE", f"/api/articles/{slug}", alice)
    await run.call("GET", f"/api/articles/{slug}")
    logged_in = await run.call("POST", "/api/users/login", body=credentials)
    await run.call("POST", "/api/users/logout", logged_in["user"]["token"])
    await run.call("GET", "/api/user", logged_in["user"]["token"])


@pytest.mark.parametrize("through", ["bundle", "own function"])
async def test_every_route_answers_the_same_with_a_trailing_slash(api_for: ApiFactory, through: str) -> None:
    clients = {"bundle": await api_for("bundle")}
    if through == "own function":
        clients |= {name: await api_for(name) for name in ("login", "profile", "posts")}
    plain, slashed = _Run("plain", False, clients), _Run("slashed", True, clients)

    await _scenario(plain)
    await _scenario(slashed)

    assert len(plain.transcript) == 25
    assert all(status < 300 or step.startswith("GET /api/") for step, status, _ in plain.transcript)
    assert slashed.transcript == plain.transcript


async def test_the_bundle_and_each_function_give_the_same_transcript(api_for: ApiFactory) -> None:
    bundle = _Run("viabundle", True, {"bundle": await api_for("bundle")})
    owners = {name: await api_for(name) for name in ("login", "profile", "posts")}
    own = _Run("viaowner", True, {"bundle": bundle.clients["bundle"], **owners})

    await _scenario(bundle)
    await _scenario(own)

    assert own.transcript == bundle.transcript
