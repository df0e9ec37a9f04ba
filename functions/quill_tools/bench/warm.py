"""Warm load: requests/s and latency per route at several concurrencies, beside the floor.

The client is ``wrk`` when installed (else a multi-process Python client, see
``loadgen``); its own ceiling shows as the bare Starlette app's figures in the same run.
The floor is a trivial functions-framework function; every Quill figure is also given
as a ratio to it.

Writes are measured at concurrency 32 only, twice: through the bundle as ``quill dev``
runs it (its server storing each event, its worker process delivering every one to the
consumers), and through ``posts`` alone with ``K_SINK`` set to a sink that takes every event. Titles
are unique and the write rate limit is off (``RATE_LIMIT_WRITES=0``, the harness's
environment), so no cell is a 429.

Issue 16 judges each signed-in read against an anonymous one, and three reads are judged
against the floor. Their cells run a minute apart, and on a shared host the machine under
them changes in that minute (CPU stolen by other guests, reported as each cell's
``steal_pct``), so each is also measured beside what it is judged against in short
alternating slices (``pairs``, ``over_floor``): the ratios the targets judge.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import psycopg

from quill_tools.bench import baselines
from quill_tools.bench.harness import Scratch, migrated_scratch, running, start_quill
from quill_tools.bench.load import seed
from quill_tools.bench.loadgen import Plan, Request, client_name, measure

__all__ = ["FLOOR_JUDGED", "PAIRS", "ROUTES", "WRITES", "Side", "alternating", "plan", "run"]

ROUTES: tuple[str, ...] = (
    "article",
    "article_signed_in",
    "profile_anonymous",
    "profile_signed_in",
    "user",
    "list",
    "list_signed_in",
    "tag",
    "feed",
    "login",
)
WRITES: tuple[str, ...] = ("create", "update", "favorite", "comment")
WRITE_CONCURRENCY = 32
# Each signed-in read and the anonymous read issue 16 judges it against, at c=32.
PAIRS: tuple[tuple[str, str], ...] = (
    ("list_signed_in", "list"),
    ("feed", "list"),
    ("user", "article"),
    ("profile_signed_in", "article"),
    ("article_signed_in", "article"),
)
PAIR_CONCURRENCY = 32
# The reads judged against the floor (>= 0.6x its req/s at c=32), the same way.
FLOOR_JUDGED: tuple[str, ...] = ("article", "profile_anonymous", "profile_signed_in")
# Each account follows this many others, as a frontend's user does: the feed cell reads a
# page of their articles (with no follows every feed was the empty page), and the signed-in
# list and article carry some ``following`` flags set.
FOLLOWS = 5

# The function that serves each route alone (knative/routing.yaml sends it there).
OWNER = {
    "article": "posts",
    "article_signed_in": "posts",
    "profile_anonymous": "profile",
    "profile_signed_in": "profile",
    "user": "login",
    "list": "posts",
    "list_signed_in": "posts",
    "tag": "posts",
    "feed": "posts",
    "create": "posts",
    "comment": "posts",
    "login": "login",
}


def plan(route: str, accounts: list[dict[str, str]]) -> Plan:
    """The requests one route's cell cycles through, spread over the seeded accounts."""

    def auth(account: dict[str, str]) -> tuple[tuple[str, str], ...]:
        return (("Authorization", f"Token {account['token']}"),)

    def each(build: Callable[[dict[str, str]], Request]) -> Plan:
        return Plan(tuple(build(account) for account in accounts))

    def each_other(build: Callable[[dict[str, str], dict[str, str]], Request]) -> Plan:
        """Each account reading the next one's: a frontend's reader is rarely the author."""
        return Plan(tuple(build(me, other) for me, other in zip(accounts, [*accounts[1:], accounts[0]], strict=True)))

    if route == "floor":
        return Plan((Request("GET", "/"),))
    if route == "article":
        return each(lambda a: Request("GET", f"/api/articles/{a['slug']}"))
    if route == "article_signed_in":
        return each_other(lambda me, other: Request("GET", f"/api/articles/{other['slug']}", auth(me)))
    if route == "user":
        return each(lambda a: Request("GET", "/api/user", auth(a)))
    if route == "profile_anonymous":
        return each(lambda a: Request("GET", f"/api/profiles/{a['username']}"))
    if route == "profile_signed_in":
        return each_other(lambda me, other: Request("GET", f"/api/profiles/{other['username']}", auth(me)))
    if route == "list":
        return Plan((Request("GET", "/api/articles?limit=20"),))
    if route == "list_signed_in":
        return each(lambda a: Request("GET", "/api/articles?limit=20", auth(a)))
    if route == "tag":
        return Plan((Request("GET", "/api/articles?tag=topic1&limit=20"),))
    if route == "feed":
        return each(lambda a: Request("GET", "/api/articles/feed", auth(a)))
    if route == "create":
        body = json.dumps({"article": {"title": "Load {n}", "description": "d", "body": "b"}})
        return each(lambda a: Request("POST", "/api/articles", auth(a), body))
    if route == "update":
        body = json.dumps({"article": {"body": "Edited {n}"}})
        return each(lambda a: Request("PUT", f"/api/articles/{a['slug']}", auth(a), body))
    if route == "favorite":  # each account favorites, then unfavorites, every other account's article
        pairs = [(a, b) for a in accounts for b in accounts if a is not b]
        return Plan(
            tuple(Request("POST", f"/api/articles/{b['slug']}/favorite", auth(a)) for a, b in pairs)
            + tuple(Request("DELETE", f"/api/articles/{b['slug']}/favorite", auth(a)) for a, b in pairs)
        )
    if route == "comment":
        body = json.dumps({"comment": {"body": "hi"}})
        return each(lambda a: Request("POST", f"/api/articles/{a['slug']}/comments", auth(a), body))
    if route == "login":
        return each(
            lambda a: Request(
                "POST",
                "/api/users/login",
                body=json.dumps({"user": {"email": f"{a['username']}@example.com", "password": "password123"}}),
            )
        )
    raise ValueError(f"unknown route {route!r}")


def run(
    admin_url: str,
    redis_url: str,
    *,
    concurrencies: tuple[int, ...] = (1, 32, 128),
    seconds: float = 5.0,
    routes: tuple[str, ...] = ROUTES,
    writes: tuple[str, ...] = WRITES,
    pair_slices: int = 6,
    pair_seconds: float = 2.0,
) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds_per_cell": seconds, "client": client_name()}
    with migrated_scratch(admin_url, redis_url, "warm") as scratch:
        env, folder = scratch.env, scratch.folder
        with start_quill(["serve", "bundle"], env, folder) as bundle:
            accounts = asyncio.run(seed(bundle.base_url, users=20, articles_per_user=2, follows=FOLLOWS))
            servers = baselines.write(folder)
            results["baselines"] = reference = {
                name: _measure_all(argv, concurrencies, seconds, accounts) for name, argv in servers.items()
            }
            results["routes"] = _cells(bundle.base_url, routes, concurrencies, seconds, accounts, reference)
            if pair_slices > 0:
                results["pairs"] = _paired(bundle.base_url, routes, accounts, slices=pair_slices, seconds=pair_seconds)
            if pair_slices > 0 and set(FLOOR_JUDGED) & set(routes):
                with running(servers["floor"], {}) as floor:
                    results["over_floor"] = _over_floor(
                        bundle.base_url, floor.base_url, routes, accounts, slices=pair_slices, seconds=pair_seconds
                    )
        # The same routes on the one function that owns each, as its Knative Service runs it.
        results["single_function"] = {}
        for target in dict.fromkeys(OWNER[route] for route in routes):
            owned = tuple(route for route in routes if OWNER[route] == target)
            with start_quill(["serve", target], env, folder) as single:
                cells = _cells(single.base_url, owned, concurrencies, seconds, accounts, reference)
            results["single_function"].update({f"{route} ({target})": cell for route, cell in cells.items()})
        if writes:
            results["writes"] = _writes(scratch, writes, seconds, accounts, reference)
    return results


def _writes(
    scratch: Scratch, writes: tuple[str, ...], seconds: float, accounts: list[dict[str, str]], reference: dict[str, Any]
) -> dict[str, Any]:
    """Each write at c=32 through ``quill dev`` and through ``posts`` alone. After each cell
    the server is left to deliver what the cell emitted (to the broker, and under ``quill
    dev`` on to every Trigger's subscriber) before the next cell starts: a cell's figure
    is its writes, with the deliveries in the background, and not the previous cell's
    backlog. How long that took is reported beside it, and what was still undelivered."""
    env, folder = scratch.env, scratch.folder
    dev = ["dev", "--data-dir", str(folder / "dev"), "--host", "127.0.0.1"]
    with start_quill(dev, env, folder) as bundle:
        through_bundle, pending_bundle = _settled_cells(
            bundle.base_url, scratch, writes, seconds, accounts, reference, deliveries=True
        )
    with (
        running(baselines.write_sink(folder), {}) as sink,
        start_quill(["serve", "posts"], {**env, "K_SINK": sink.base_url + "/"}, folder) as single,
    ):
        alone, pending_alone = _settled_cells(
            single.base_url, scratch, writes, seconds, accounts, reference, deliveries=False
        )
    cells: dict[str, Any] = {}
    for route in writes:
        own, through = alone[route], through_bundle[route]
        ratio = own["requests_per_second"] / through["requests_per_second"] if through["requests_per_second"] else 0.0
        cells[route] = {"bundle": through, "own_function": own, "own_over_bundle": ratio}
    return {
        "concurrency": WRITE_CONCURRENCY,
        "routes": cells,
        "events_undelivered": {"bundle": pending_bundle, "own_function": pending_alone},
    }


def _settled_cells(
    base_url: str,
    scratch: Scratch,
    writes: tuple[str, ...],
    seconds: float,
    accounts: list[dict[str, str]],
    reference: dict[str, Any],
    *,
    deliveries: bool,
) -> tuple[dict[str, Any], int]:
    """Each write's c=32 cell, each followed by its drain (``drained_seconds``); the events
    still undelivered after the last."""
    cells: dict[str, Any] = {}
    pending = 0
    for route in writes:
        cell = _cells(base_url, (route,), (WRITE_CONCURRENCY,), seconds, accounts, reference)[route]
        cells[route] = cell[str(WRITE_CONCURRENCY)]
        started = time.monotonic()
        pending = _settled(scratch.database_url, deliveries=deliveries)
        cells[route]["drained_seconds"] = time.monotonic() - started
    return cells, pending


def _settled(database_url: str, *, deliveries: bool, within: float = 60.0) -> int:
    """Events not yet delivered once they stop draining (or ``within`` seconds pass): not
    yet published to the sink, and with ``deliveries`` not yet delivered by the local
    broker to a Trigger's subscriber."""
    deadline = time.monotonic() + within
    while True:
        with psycopg.connect(database_url) as conn:
            row = conn.execute("SELECT count(*) FROM outbox WHERE published_at IS NULL").fetchone()
            pending = int(row[0]) if row else 0
            if deliveries:
                row = conn.execute("SELECT count(*) FROM broker_deliveries WHERE state = 'pending'").fetchone()
                pending += int(row[0]) if row else 0
        if pending == 0 or time.monotonic() > deadline:
            return pending
        time.sleep(0.25)


def _series(base_url: str, load: Plan, concurrencies: tuple[int, ...], seconds: float) -> dict[str, Any]:
    """One cell per concurrency; the first after an unrecorded warm-up, so that a route's
    first cell is not its cold start."""
    return {
        str(concurrency): measure(
            base_url, load, connections=concurrency, seconds=seconds, warmup=min(1.0, seconds) if index == 0 else 0.0
        )
        for index, concurrency in enumerate(concurrencies)
    }


def _cells(
    base_url: str,
    routes: tuple[str, ...],
    concurrencies: tuple[int, ...],
    seconds: float,
    accounts: list[dict[str, str]],
    reference: dict[str, Any],
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for route in routes:
        results[route] = _series(base_url, plan(route, accounts), concurrencies, seconds)
        for concurrency, cell in results[route].items():
            if concurrency not in reference["floor"]:  # a --quick run measured the floor at fewer
                continue
            floor = reference["floor"][concurrency]["requests_per_second"]
            cell["vs_floor"] = cell["requests_per_second"] / floor if floor else float("nan")
    return results


class Side(NamedTuple):
    """One side of an alternating measure: its name, the server asked and what it is asked."""

    name: str
    base_url: str
    load: Plan


def _paired(
    base_url: str, routes: tuple[str, ...], accounts: list[dict[str, str]], *, slices: int, seconds: float
) -> dict[str, Any]:
    """Each of ``PAIRS`` whose two routes are in ``routes``, the signed-in read beside its
    anonymous read (both through ``base_url``)."""
    return {
        signed_in: alternating(
            Side(signed_in, base_url, plan(signed_in, accounts)),
            Side(anonymous, base_url, plan(anonymous, accounts)),
            slices,
            seconds,
        )
        for signed_in, anonymous in PAIRS
        if signed_in in routes and anonymous in routes
    }


def _over_floor(
    base_url: str,
    floor_url: str,
    routes: tuple[str, ...],
    accounts: list[dict[str, str]],
    *,
    slices: int,
    seconds: float,
) -> dict[str, Any]:
    """Each of ``FLOOR_JUDGED`` in ``routes`` beside the floor (its own server, idle
    between its slices)."""
    floor = Side("floor", floor_url, plan("floor", accounts))
    return {
        route: alternating(Side(route, base_url, plan(route, accounts)), floor, slices, seconds)
        for route in FLOOR_JUDGED
        if route in routes
    }


def alternating(route: Side, over: Side, slices: int, seconds: float) -> dict[str, Any]:
    """``route`` and ``over`` at c=32 in ``slices`` alternating slices of ``seconds``
    each, in ABBA order (so neither always goes first), and the route's req/s over the
    other's.

    Each side first gets an unrecorded warm-up (the floor's server is new), as a route's
    first cell does. Latency is judged from the route's own cell: each slice opens its
    connections anew, and a short slice's p99 is mostly those first requests."""
    mine: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for index in range(slices):
        turns = ((over, theirs), (route, mine))
        for side, cells in turns if index % 2 == 0 else reversed(turns):
            warmup = 1.0 if index == 0 else 0.0
            cells.append(
                measure(side.base_url, side.load, connections=PAIR_CONCURRENCY, seconds=seconds, warmup=warmup)
            )
    rate, base = _mean_rate(mine), _mean_rate(theirs)
    return {
        "over": over.name,
        "concurrency": PAIR_CONCURRENCY,
        "seconds_per_slice": seconds,
        "requests_per_second": rate,
        "over_requests_per_second": base,
        "ratio": rate / base if base else 0.0,
        "slice_ratios": [
            a["requests_per_second"] / b["requests_per_second"] if b["requests_per_second"] else 0.0
            for a, b in zip(mine, theirs, strict=True)
        ],
        "steal_pct": statistics.fmean(cell["steal_pct"] for cell in [*mine, *theirs]),
        "slices": {"route": mine, "over": theirs},
    }


def _mean_rate(cells: list[dict[str, Any]]) -> float:
    return statistics.fmean(cell["requests_per_second"] for cell in cells)


def _measure_all(
    argv: list[str], concurrencies: tuple[int, ...], seconds: float, accounts: list[dict[str, str]]
) -> dict[str, Any]:
    with running(argv, {}) as server:
        return _series(server.base_url, plan("floor", accounts), concurrencies, seconds)
