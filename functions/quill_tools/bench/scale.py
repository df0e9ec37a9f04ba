"""Scale: list, filter, feed and search latency at 10k, 100k and 1M articles.

One database grows through the scales (``seed.grow``); at each, every query is loaded
through the bundle at one concurrency, and EXPLAIN ANALYZE of the exact statements the
``posts`` function runs proves which indexes they use. That bundle runs with its near
cache off (``NEAR_CACHE_SIZE=0``), so every page comes from PostgreSQL; identical anonymous
pages asked for at the same moment still share one build, so the signed-in cells (one
build per request, with the viewer's flags) are the per-request SQL path. ``list_served`` is
the anonymous list as a client gets it, from a bundle started after the seeding with
the near cache on (the seeder writes behind Quill's back, so a running process would
hold pages it never saw change).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import httpx
import psycopg

from quill.domain.pages import page_sql
from quill_tools.bench.harness import migrated_scratch, start_quill
from quill_tools.bench.loadgen import Plan, Request, client_name, measure
from quill_tools.bench.seed import FOLLOWS_PER_USER, grow, tag, word

__all__ = ["SCALES", "run"]

SCALES = (10_000, 100_000, 1_000_000)
# Mid-popularity choices: a tag on ~1% of articles, a word in ~0.5% of them.
TAG = tag(10)
TERM = word(300)

# The first cells after seeding (cold buffers, fresh plans) were slower than later ones and
# flattered the growth ratios: each cell gets this much unrecorded load first.
_WARMUP = 1.0

_FOLLOW = """
INSERT INTO follows (follower_id, followee_id)
SELECT %(reader)s, id FROM users WHERE username LIKE 'u%%' ORDER BY id LIMIT %(follows)s
ON CONFLICT DO NOTHING
"""


def _queries(reader_id: int) -> dict[str, tuple[str, dict[str, Any], bool]]:
    """name -> (path, the page_sql parameters the posts function binds, signed in).

    Signed in, the page also carries the viewer's flags (favorited, following)."""
    base: dict[str, Any] = dict.fromkeys(("tag", "author", "favorited", "q", "feed_of"))
    base.update(viewer=None, limit=20, offset=0)
    signed: dict[str, Any] = {**base, "viewer": reader_id}
    return {
        "list": ("/api/articles?limit=20", base, False),
        "list_signed_in": ("/api/articles?limit=20", signed, True),
        "tag_signed_in": (f"/api/articles?tag={TAG}&limit=20", {**signed, "tag": TAG}, True),
        "feed": ("/api/articles/feed?limit=20", {**signed, "feed_of": reader_id}, True),
        "search": (f"/api/articles?q={TERM}&limit=20", {**base, "q": TERM}, False),
    }


_INDEX = re.compile(r"(?:Index|Index Only|Bitmap Index) Scan (?:Backward )?(?:using|on) (\w+)")


def _explain(database_url: str, params: dict[str, Any]) -> dict[str, Any]:
    """EXPLAIN ANALYZE of the page and count statements, as the function's sessions plan them."""
    found: dict[str, Any] = {}
    with psycopg.connect(database_url, options="-c plan_cache_mode=force_custom_plan") as conn:
        for name, statement in zip(("page", "count"), page_sql(params), strict=True):
            rows = conn.execute(("EXPLAIN (ANALYZE, BUFFERS) " + statement).encode(), params).fetchall()
            plan = "\n".join(row[0] for row in rows)
            timing = re.search(r"Execution Time: ([\d.]+) ms", plan)
            found[name] = {
                "execution_ms": float(timing.group(1)) if timing else float("nan"),
                "scans_articles": "Seq Scan on articles" in plan,
                "indexes": sorted(set(_INDEX.findall(plan))),
                "plan": plan,
            }
    return found


def run(
    admin_url: str,
    redis_url: str,
    *,
    scales: tuple[int, ...] = SCALES,
    seconds: float = 5.0,
    concurrency: int = 32,
) -> dict[str, Any]:
    results: dict[str, Any] = {
        "concurrency": concurrency,
        "seconds_per_cell": seconds,
        "client": client_name(),
        "tag": TAG,
        "term": TERM,
        "scales": {},
    }
    with migrated_scratch(admin_url, redis_url, "scale") as scratch:
        database_url, env, folder = scratch.database_url, scratch.env, scratch.folder
        uncached = {**env, "NEAR_CACHE_SIZE": "0"}
        with start_quill(["serve", "bundle"], uncached, folder) as bundle:
            token = asyncio.run(_reader(bundle.base_url))
            with psycopg.connect(database_url) as conn:
                row = conn.execute("SELECT id FROM users WHERE username = 'reader'").fetchone()
                reader_id = int(row[0]) if row else 0
            auth = (("Authorization", f"Token {token}"),)
            for articles in scales:
                seeding = grow(database_url, articles)
                with psycopg.connect(database_url, autocommit=True) as conn:
                    conn.execute(_FOLLOW, {"reader": reader_id, "follows": FOLLOWS_PER_USER})
                    conn.execute("ANALYZE follows")
                cells: dict[str, Any] = {}
                for name, (path, params, signed_in) in _queries(reader_id).items():
                    request = Request("GET", path, auth if signed_in else ())
                    cell = measure(
                        bundle.base_url, Plan((request,)), connections=concurrency, seconds=seconds, warmup=_WARMUP
                    )
                    cell["matches"] = httpx.get(bundle.base_url + path, headers=dict(request.headers)).json()[
                        "articlesCount"
                    ]
                    cell["explain"] = _explain(database_url, params)
                    cells[name] = cell
                with start_quill(["serve", "bundle"], env, folder) as served:
                    path = "/api/articles?limit=20"
                    cell = measure(
                        served.base_url,
                        Plan((Request("GET", path),)),
                        connections=concurrency,
                        seconds=seconds,
                        warmup=_WARMUP,
                    )
                    cell["matches"] = httpx.get(served.base_url + path).json()["articlesCount"]
                    cells["list_served"] = cell
                results["scales"][str(articles)] = {"seeding_s": seeding, "queries": cells}
    first, last = str(scales[0]), str(scales[-1])
    results["p95_growth"] = {
        name: results["scales"][last]["queries"][name]["p95_ms"] / results["scales"][first]["queries"][name]["p95_ms"]
        for name in results["scales"][first]["queries"]
        if name != "list_served"
    }
    return results


async def _reader(base_url: str) -> str:
    """A signed-in reader for the feed (it follows seeded authors at each scale)."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        user = {"username": "reader", "email": "reader@example.com", "password": "password123"}
        response = await client.post("/api/users", json={"user": user})
        response.raise_for_status()
        token: str = response.json()["user"]["token"]
    return token
