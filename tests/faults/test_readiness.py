"""Readiness on a PostgreSQL of the test's own: busy is ready, unreachable is not (finding F4)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from quill import db
from quill.settings import Settings, use_settings
from tests.conftest import Api
from tests.faults.conftest import ThrowawayPostgres


async def test_a_server_with_every_connection_slot_taken_is_busy_not_down(
    api: Api, settings: Settings, throwaway_postgres: ThrowawayPostgres, settings_factory: Any
) -> None:
    """The pool's connections are all in use and the server refuses one more (SQLSTATE 53300):
    PostgreSQL is up, so the replica stays ready."""
    with psycopg.connect(throwaway_postgres.url, autocommit=True) as conn:
        conn.execute("CREATE ROLE busy LOGIN CONNECTION LIMIT 2")
        conn.execute("GRANT ALL ON SCHEMA public TO busy")
    url = str(psycopg.conninfo.make_conninfo(throwaway_postgres.url, user="busy"))
    await db.aclose()
    with use_settings(settings_factory(redis_prefix=settings.redis_prefix, database_url=url, db_pool_max=2)):
        pool = await db.get_pool()

        async def hold() -> None:
            async with pool.connection() as conn:
                await conn.execute("SELECT pg_sleep(2)")

        holders = [asyncio.create_task(hold()) for _ in range(2)]
        await asyncio.sleep(0.5)
        busy = await api.get("/health/readiness")
        await asyncio.gather(*holders)
        await db.aclose()

    assert busy.status_code == 200
    assert busy.json()["checks"]["database"] == "saturated"
