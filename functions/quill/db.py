"""The PostgreSQL pool: opened once per process on first use, closed on shutdown.

Use it the way psycopg's docs say: ``async with connection() as conn`` commits on
success and rolls back on error. Connection failures surface as ``UnavailableError``
(503) so a request never hangs or answers 500 because PostgreSQL is away.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from weakref import WeakKeyDictionary

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from quill.errors import UnavailableError
from quill.lazy import Lazy
from quill.settings import get_settings

__all__ = ["Connection", "aclose", "autocommit", "connection", "get_pool", "ping"]

Connection = psycopg.AsyncConnection[dict[str, Any]]


# A connection back in the pool less than this long ago is taken as alive: checking each
# one costs a round trip per request. After a failover the few that slip through fail
# once (503) and the pool drops them.
_CHECK_AFTER_IDLE = 2.0
# Set as ``connection()`` hands a connection back. Not the pool's ``reset`` callback: with
# one, psycopg_pool returns every connection through a maintenance task, a hop that left
# requests queueing for connections that were already free.
_returned: WeakKeyDictionary[Connection, float] = WeakKeyDictionary()


async def _check_if_idle(conn: Connection) -> None:
    if time.monotonic() - _returned.get(conn, 0.0) > _CHECK_AFTER_IDLE:
        await AsyncConnectionPool.check_connection(conn)


async def _open() -> AsyncConnectionPool[Connection]:
    settings = get_settings()
    pool: AsyncConnectionPool[Connection] = AsyncConnectionPool(
        settings.database_url,
        min_size=settings.db_pool_min,
        max_size=settings.db_pool_max,
        timeout=settings.db_pool_timeout,
        max_idle=300,
        max_lifetime=1800,
        open=False,
        check=_check_if_idle,
        kwargs={
            "row_factory": dict_row,
            "connect_timeout": 3,
            # Prepared statements keep their plans (PostgreSQL's default): a write is
            # planned once per connection, not on every execution (planning was about
            # half of PostgreSQL's time in a create). The list and search pages, whose
            # best plan depends on the values (a rare tag, a common one), are never
            # prepared: ``pages`` plans each with its own values.
            "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
            "application_name": f"quill-{settings.function}",
        },
        name=f"quill-{settings.function}",
    )
    # wait=False: a process must start (and answer liveness) while PostgreSQL is away.
    await pool.open(wait=False)
    return pool


async def _close(pool: AsyncConnectionPool[Connection]) -> None:
    await pool.close()


_pool: Lazy[AsyncConnectionPool[Connection]] = Lazy(_open, _close)
get_pool = _pool.get
aclose = _pool.aclose


@asynccontextmanager
async def connection() -> AsyncIterator[Connection]:
    """A pooled connection inside a transaction; PostgreSQL outages become a 503."""
    pool = await get_pool()
    try:
        async with pool.connection() as conn:
            try:
                yield conn
            finally:
                _returned[conn] = time.monotonic()
    except (PoolTimeout, psycopg.OperationalError) as exc:
        raise UnavailableError("database") from exc


@asynccontextmanager
async def autocommit() -> AsyncIterator[Connection]:
    """A pooled connection in autocommit: each statement is its own transaction, with no
    BEGIN and COMMIT round trips around it. For reads (each statement sees its own
    snapshot) and for a write that is one statement; anything else uses ``connection()``."""
    async with connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if not conn.closed:
                await conn.set_autocommit(False)  # the pool hands it out transactional again


# A probe must answer inside Kubernetes' default probe timeout (1 s): the pool gets a
# moment, and the direct check gets the rest.
_POOL_WAIT = 0.4
_DIRECT_WAIT = 0.5
_TOO_MANY_CONNECTIONS = "53300"


async def ping() -> str:
    """``ok``, ``saturated`` (reachable, every pooled connection busy) or ``down``.

    A pool with no free connection is either busy or failing to reconnect, and its
    statistics cannot tell which (connections being attempted count in ``pool_size``).
    So a ping that finds none asks PostgreSQL directly, on a connection of its own."""
    pool = await get_pool()
    try:
        async with asyncio.timeout(_POOL_WAIT), pool.connection(timeout=_POOL_WAIT) as conn:
            await conn.execute("SELECT 1")
        return "ok"
    except (PoolTimeout, TimeoutError):
        return "saturated" if await _answers() else "down"
    except (psycopg.Error, OSError):
        return "down"


async def _answers() -> bool:
    """Whether PostgreSQL answers a new connection (outside the pool). A server refusing it
    because every connection slot is taken answers too: it is up, and busy."""
    settings = get_settings()
    try:
        async with asyncio.timeout(_DIRECT_WAIT):
            conn = await psycopg.AsyncConnection.connect(settings.database_url, connect_timeout=2)
            await conn.close()
        return True
    except psycopg.OperationalError as exc:
        # libpq reports a refused start-up without a result, so no SQLSTATE class: read it.
        return exc.sqlstate == _TOO_MANY_CONNECTIONS or "too many" in str(exc)
    except (psycopg.Error, OSError, TimeoutError):
        return False
