"""PostgreSQL restarted under load: fail fast with 503, recover within 5 s, no half-writes."""

from __future__ import annotations

import asyncio

import psycopg

from quill.settings import Settings
from tests.conftest import Api
from tests.faults.conftest import Load, ThrowawayPostgres


async def test_postgres_restart_under_load(
    api: Api, on_throwaway_postgres: Settings, throwaway_postgres: ThrowawayPostgres
) -> None:
    token = await api.register("writer")
    created: list[str] = []

    async def request(worker: int, sequence: int) -> tuple[str, int]:
        if worker % 2:  # the feed: list pages, signed in or not, may be answered from memory during the outage
            return "read", (await api.get("/api/articles/feed?limit=5", token)).status_code
        title = f"w{worker}-{sequence}"
        response = await api.post(
            "/api/articles",
            token,
            json={"article": {"title": title, "description": "d", "body": "b", "tagList": ["t", title]}},
        )
        if response.status_code == 201:
            created.append(response.json()["article"]["slug"])
        return "write", response.status_code

    load = Load()
    loop = asyncio.get_running_loop()
    runner = asyncio.create_task(load.run(6, request))
    await asyncio.sleep(1.0)
    await asyncio.to_thread(throwaway_postgres.kill)
    killed_at = loop.time()  # once it is gone: a fast shutdown still serves for a moment
    # Long enough that every worker starts and finishes (a 1 s pool timeout) at least one
    # request inside the outage, even on a loaded CI machine where the loop lags.
    await asyncio.sleep(4.0)
    restarting_at = loop.time()  # it may accept connections before start() returns
    await asyncio.to_thread(throwaway_postgres.start)
    back_at = loop.time()
    await asyncio.sleep(6.0)
    load.stop.set()
    await runner

    statuses = {outcome.status for outcome in load.outcomes}
    assert statuses <= {200, 201, 503}, statuses
    # started after the kill and answered before the restart began: no PostgreSQL at all.
    # A write cannot succeed then; a feed page may still be served from the near cache.
    during = [o for o in load.outcomes if killed_at + 0.2 < o.started and o.started + o.seconds < restarting_at]
    writes_during = [o for o in during if o.kind == "write"]
    assert writes_during, f"writes ran during the outage: {sorted(o.started - killed_at for o in load.outcomes)}"
    assert all(o.status == 503 for o in writes_during), [(o.status, o.started - killed_at) for o in writes_during]
    assert all(o.status in (200, 503) for o in during if o.kind == "read")
    assert max(o.seconds for o in load.outcomes) < 3.0, "requests fail fast, they do not hang"
    settled = [o for o in load.outcomes if o.started > back_at + 5.0]
    assert settled, "the load ran after recovery"
    assert all(o.status in (200, 201) for o in settled)

    with psycopg.connect(throwaway_postgres.url) as conn:
        rows = conn.execute(
            "SELECT a.slug, a.tag_list, array(SELECT tag FROM article_tags t WHERE t.article_id = a.id ORDER BY tag),"
            " (SELECT count(*) FROM outbox o WHERE o.type = 'io.quill.article.created.v1' AND o.subject = a.id::text)"
            " FROM articles a"
        ).fetchall()
    assert set(created) <= {row[0] for row in rows}  # every acknowledged write is there
    for slug, tag_list, indexed, events in rows:  # and nothing is half-written
        assert sorted(tag_list) == list(indexed), slug
        assert events == 1, slug
    print(f"requests {len(load.outcomes)}, writes during outage {len(writes_during)} (all 503), after recovery all 2xx")
