"""argon2id password hashes, computed off the event loop, a bounded number at a time.

Each hash takes ~19 MiB and ~50 ms of CPU in a worker thread. Unbounded, a burst of
logins runs as many at once as the default thread pool has threads, which grows with
the node's CPU count, not with the container's memory limit: 20 concurrent logins took
a ``login`` replica from 88 to 184 MB. At most ``PASSWORD_HASH_CONCURRENCY`` run at once
(the replica's memory is then its base plus that many times 19 MiB, whatever the node);
the rest queue for up to ``QUEUE_SECONDS``, well inside the request timeout, then 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, TypeVar

from quill.errors import UnavailableError
from quill.observability import PASSWORD_HASHES
from quill.settings import get_settings

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["QUEUE_SECONDS", "hash_password", "verify_password"]

QUEUE_SECONDS = 10.0
T = TypeVar("T")

# A valid hash of a random password: verifying against it when the account does not
# exist keeps the time of a failed login the same whether or not the email is known.
_DECOY = "$argon2id$v=19$m=19456,t=2,p=1$mts2LLSCYuc9PqHDyiT3zg$2zbkrlZWhvIJS2ugHqAv1YrbxE0pReGPKJHUHsGNg68"


@cache
def _hasher() -> PasswordHasher:
    # Imported on first use: only `login` hashes passwords, the other functions never pay for it.
    from argon2 import PasswordHasher

    # OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@cache
def _slots(size: int) -> asyncio.Semaphore:
    return asyncio.Semaphore(size)


def _verify(hashed: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def _bounded(operation: str, work: Callable[..., T], *args: str) -> T:
    """Run ``work`` in a thread once a slot is free; 503 if none frees up in time."""
    slots = _slots(get_settings().password_hash_concurrency)
    try:
        async with asyncio.timeout(QUEUE_SECONDS):
            await slots.acquire()
    except TimeoutError:
        raise UnavailableError("login") from None
    PASSWORD_HASHES.labels(operation).inc()
    # The slot is freed when the hash ends, not when the caller stops waiting: a request
    # cancelled mid-hash leaves its thread running, and it still counts.
    running = asyncio.ensure_future(asyncio.to_thread(work, *args))
    running.add_done_callback(lambda _: slots.release())
    return await asyncio.shield(running)


async def hash_password(password: str) -> str:
    return await _bounded("hash", _hasher().hash, password)


async def verify_password(hashed: str | None, password: str) -> bool:
    """True when ``password`` matches; with no hash (unknown account) it spends the same time."""
    ok = await _bounded("verify", _verify, hashed or _DECOY, password)
    return ok and hashed is not None
