"""argon2id password hashes, computed off the event loop (hashing takes tens of ms)."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from argon2 import PasswordHasher

__all__ = ["hash_password", "verify_password"]

# A valid hash of a random password: verifying against it when the account does not
# exist keeps the time of a failed login the same whether or not the email is known.
_DECOY = "$argon2id$v=19$m=19456,t=2,p=1$mts2LLSCYuc9PqHDyiT3zg$2zbkrlZWhvIJS2ugHqAv1YrbxE0pReGPKJHUHsGNg68"


@cache
def _hasher() -> PasswordHasher:
    # Imported on first use: only `login` hashes passwords, the other functions never pay for it.
    from argon2 import PasswordHasher

    # OWASP's argon2id minimum: 19 MiB, 2 iterations, 1 lane.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


def _verify(hashed: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return _hasher().verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(hashed: str | None, password: str) -> bool:
    """True when ``password`` matches; with no hash (unknown account) it spends the same time."""
    ok = await asyncio.to_thread(_verify, hashed or _DECOY, password)
    return ok and hashed is not None
