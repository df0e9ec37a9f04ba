"""Quill beside another RealWorld backend: the same routes under the same load, in turns.

Issue 16 is done when Quill is ahead of the platform it replaces on every route but
login, by about 3x on reads and writes, measured side by side. This suite is that
measurement, for any server that speaks the RealWorld API: give it the other's URL.
Both are seeded through the API alone, the same way (50 accounts with 20 articles each,
each following the next 5), and each route runs at c=32 in alternating slices (ABBA),
Quill's bundle beside the other server, so that both see the same machine.

Quill runs as one process, as the other does: ``quill serve bundle``, with ``K_SINK`` a
sink that takes every event, as the cluster's broker ingress does. Only successful answers
count as served (a 4xx is no read); each side's errors are reported beside. Login is
measured and not judged: its argon2id hash costs what it does by design.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import statistics
from dataclasses import replace
from typing import Any

from quill_tools.bench import baselines
from quill_tools.bench.harness import migrated_scratch, running, start_quill
from quill_tools.bench.load import seed
from quill_tools.bench.loadgen import Plan, Request, client_name
from quill_tools.bench.warm import FOLLOWS, Side, alternating, plan

__all__ = ["READS", "ROUTES", "UNJUDGED", "WRITES", "run", "served_per_second"]

READS: tuple[str, ...] = (
    "list",
    "list_signed_in",
    "feed",
    "tag",
    "article",
    "article_signed_in",
    "profile_anonymous",
    "profile_signed_in",
    "user",
)
WRITES: tuple[str, ...] = ("create", "update", "favorite", "comment")
UNJUDGED: tuple[str, ...] = ("login",)
ROUTES: tuple[str, ...] = READS + WRITES + UNJUDGED


# A create as a RealWorld frontend's editor sends it: every field filled, a tag. Other
# backends are stricter (one asks 10+ characters of description and body, and a tagList).
_CREATE = json.dumps(
    {
        "article": {
            "title": "Load {n}",
            "description": "Written under load",
            "body": "A benchmark wrote this article while it measured.",
            "tagList": ["load"],
        }
    }
)


def _plan(route: str, accounts: list[dict[str, str]]) -> Plan:
    """``warm``'s plan for ``route``, but requests any RealWorld backend takes: a create
    with every field, and favorites that are each asked once.

    ``warm`` favorites and unfavorites the same articles over and over, which Quill takes
    (a favorite is idempotent) but other backends answer with 400 for a second favorite.
    Here every account favorites every article of the others, each thread from a random
    point of that long cycle (tens of thousands), so what is asked is new."""
    if route == "create":
        return Plan(tuple(replace(request, body=_CREATE) for request in plan(route, accounts).requests))
    if route == "favorite":
        return Plan(
            tuple(
                Request("POST", f"/api/articles/{slug}/favorite", (("Authorization", f"Token {me['token']}"),))
                for me in accounts
                for other in accounts
                if other is not me
                for slug in other["slugs"].split()
            ),
            random_start=True,
        )
    return plan(route, accounts)


def served_per_second(cells: list[dict[str, Any]]) -> float:
    """The mean rate of successful answers over ``cells`` (errors left out)."""
    return statistics.fmean(
        # wrk counts socket errors apart from its requests: never below nothing served
        cell["requests_per_second"] * max(0.0, 1 - cell["errors"] / cell["requests"]) if cell["requests"] else 0.0
        for cell in cells
    )


def run(
    admin_url: str,
    redis_url: str,
    *,
    against: str,
    name: str = "other",
    users: int = 50,
    articles_per_user: int = 20,
    routes: tuple[str, ...] = ROUTES,
    slices: int = 4,
    seconds: float = 2.0,
) -> dict[str, Any]:
    """Seed Quill and the server at ``against`` alike, then measure each route on both."""
    prefix = f"vs{secrets.token_hex(3)}n"  # new accounts on a server that may hold others
    results: dict[str, Any] = {
        "against": {"name": name, "url": against},
        "client": client_name(),
        "seed": {"users": users, "articles_per_user": articles_per_user, "follows": FOLLOWS, "prefix": prefix},
    }
    with (
        migrated_scratch(admin_url, redis_url, "versus") as scratch,
        running(baselines.write_sink(scratch.folder), {}) as sink,
    ):
        env = {**scratch.env, "K_SINK": sink.base_url + "/"}
        with start_quill(["serve", "bundle"], env, scratch.folder) as quill:
            accounts = {
                "quill": asyncio.run(seed(quill.base_url, users, articles_per_user, FOLLOWS, prefix=prefix)),
                name: asyncio.run(seed(against, users, articles_per_user, FOLLOWS, prefix=prefix)),
            }
            results["routes"] = {
                route: _judged(
                    route,
                    alternating(
                        Side("quill", quill.base_url, _plan(route, accounts["quill"])),
                        Side(name, against, _plan(route, accounts[name])),
                        slices,
                        seconds,
                    ),
                )
                for route in routes
            }
    return results


def _judged(route: str, pair: dict[str, Any]) -> dict[str, Any]:
    """The pair with what is judged: served answers per second on each side, their ratio."""
    mine, theirs = pair["slices"]["route"], pair["slices"]["over"]
    served, other = served_per_second(mine), served_per_second(theirs)
    kind = "read" if route in READS else "write" if route in WRITES else "unjudged"
    return {
        **pair,
        "kind": kind,
        "served_per_second": served,
        "over_served_per_second": other,
        "served_ratio": served / other if other else None,  # None: the other served nothing
        "errors": sum(cell["errors"] for cell in mine),
        "over_errors": sum(cell["errors"] for cell in theirs),
    }
