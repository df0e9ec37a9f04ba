"""The pool's two shortcuts: autocommit reads, and no liveness check for a connection just used."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from quill import db
from quill.errors import UnavailableError
from quill.settings import Settings, use_settings


async def test_reading_hands_the_connection_back_transactional(settings: Settings) -> None:
    async with db.autocommit() as conn:
        assert conn.autocommit
        await conn.execute("SELECT 1")
        assert conn.info.transaction_status == TransactionStatus.IDLE  # no BEGIN was sent
    async with db.connection() as conn:
        assert not conn.autocommit
        await conn.execute("SELECT 1")
        assert conn.info.transaction_status == TransactionStatus.INTRANS


@pytest.fixture
async def one_connection(settings: Settings, settings_factory: Any) -> AsyncIterator[Settings]:
    """A pool of exactly one connection, so the test knows which one it is handed; closed
    afterwards whatever happens, so no dead connection outlives the test."""
    await db.aclose()
    chosen: Settings = settings_factory(db_pool_min=1, db_pool_max=1)
    with use_settings(chosen):
        try:
            yield chosen
        finally:
            await db.aclose()


async def _terminate_pooled_backend(settings: Settings) -> None:
    async with db.connection() as conn:
        pid = conn.info.backend_pid
    with psycopg.connect(settings.database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))


async def test_a_connection_idle_past_the_threshold_is_checked_and_replaced(
    one_connection: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_CHECK_AFTER_IDLE", 0.0)
    await _terminate_pooled_backend(one_connection)
    async with db.connection() as conn:  # the dead one fails its check and is replaced
        assert (await (await conn.execute("SELECT 1 AS one")).fetchone()) == {"one": 1}


async def test_a_connection_just_returned_skips_the_check_and_fails_once(
    one_connection: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(db, "_CHECK_AFTER_IDLE", 3600.0)
    await _terminate_pooled_backend(one_connection)
    with pytest.raises(UnavailableError):  # the trade: one 503, no round trip per request
        async with db.connection() as conn:
            await conn.execute("SELECT 1")
    async with db.connection() as conn:  # the pool dropped it
        await conn.execute("SELECT 1")
