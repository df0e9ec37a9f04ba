"""The login limits hold under attack: one canonical email, attempts counted before the hash,
and a bounded number of argon2id hashes at once (findings F1, F2 and the login memory)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import psycopg
import pytest

from quill.auth import passwords
from quill.domain.users import canonical_email
from quill.observability import registry
from quill.settings import RateLimit, Settings, use_settings
from tests.conftest import Api

RIGHT = "correct horse battery"
TRICKY = [
    "iris.ii@example.com",
    "\u0130ris.ii@example.com",  # İ: Python's lower() gives i + U+0307, PostgreSQL's gives i
    "IRIS.II@EXAMPLE.COM",
    "Stra\u00dfe@Example.com",  # ß
    "\u212aelvin@example.com",  # KELVIN SIGN, which lower() turns into k
    "e\u0301mile@example.com",  # e + combining acute: NFC composes it
    "\u00c9mile@example.com",
    "\uff41lice@example.com",  # full-width a
]


def _login(email: str, password: str) -> dict[str, Any]:
    return {"user": {"email": email, "password": password}}


def _checks() -> float:
    return registry().get_sample_value("quill_password_hashes_total", {"operation": "verify"}) or 0.0


def test_the_canonical_email_is_the_same_in_python_and_sql(settings: Settings) -> None:
    with psycopg.connect(settings.database_url) as conn:
        for email in TRICKY:
            row = conn.execute("SELECT quill_canonical_email(%s)", (email,)).fetchone()
            assert row is not None
            assert row[0] == canonical_email(email), email
    assert canonical_email("\u0130ris.ii@example.com") != canonical_email("iris.ii@example.com")
    assert canonical_email("IRIS.II@EXAMPLE.COM") == "iris.ii@example.com"


async def test_a_unicode_case_variant_neither_opens_the_account_nor_escapes_its_limit(
    api: Api, settings_factory: Callable[..., Settings]
) -> None:
    """F1: 10 wrong passwords lock the account; the İ spelling must not log into it."""
    registered = await api.post(
        "/api/users", json={"user": {"username": "iris", "email": "Iris.II@example.com", "password": RIGHT}}
    )
    assert registered.json()["user"]["email"] == "iris.ii@example.com"
    with use_settings(settings_factory(login_per_account=RateLimit(10, 900))):
        statuses = [
            (await api.post("/api/users/login", json=_login("iris.ii@example.com", "wrong-password"))).status_code
            for _ in range(11)
        ]
        real = await api.post("/api/users/login", json=_login("iris.ii@example.com", RIGHT))
        upper = await api.post("/api/users/login", json=_login("IRIS.II@EXAMPLE.COM", RIGHT))
        variant = await api.post("/api/users/login", json=_login("\u0130ris.ii@example.com", RIGHT))

    assert statuses == [401] * 10 + [429]
    assert real.status_code == 429
    assert upper.status_code == 429  # an ASCII case variant is the same account, in the same bucket
    assert variant.status_code == 401  # another address: no account, and certainly not Iris's


async def test_an_email_taken_in_another_ascii_case_is_a_conflict(api: Api) -> None:
    await api.register("alice")
    again = await api.post(
        "/api/users", json={"user": {"username": "alice2", "email": "ALICE@Example.COM", "password": RIGHT}}
    )
    assert again.status_code == 409
    assert again.json() == {"errors": {"email": ["has already been taken"]}}


def _statement(starting: str) -> str:
    """One statement of migration 0007, which has been applied to the test database already."""
    migration = resources.files("quill.migrations") / "0007_canonical_email.sql"
    text = migration.read_text(encoding="utf-8")
    start = text.index(starting)
    end = text.index("$$;", start) + 3 if starting == "DO $$" else text.index(";", start) + 1
    return text[start:end]


async def test_the_migration_stops_on_accounts_that_would_share_an_email(api: Api, settings: Settings) -> None:
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for name, email in (("composed", "\u00e9mile@example.com"), ("decomposed", "e\u0301mile@example.com")):
            conn.execute("INSERT INTO users (username, email, password_hash) VALUES (%s, %s, 'x')", (name, email))
        with pytest.raises(psycopg.errors.RaiseException, match="accounts share one canonical email"):
            conn.execute(_statement("DO $$").encode())


async def test_the_migration_makes_stored_emails_canonical(api: Api, settings: Settings) -> None:
    update = _statement("UPDATE users")
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO users (username, email, password_hash) VALUES ('old', %s, 'x')", ("Old.Mail@Example.COM",)
        )
        conn.execute(update.encode())
        row = conn.execute("SELECT email FROM users WHERE username = 'old'").fetchone()
    assert row is not None
    assert row[0] == "old.mail@example.com"


async def test_concurrent_guesses_check_at_most_the_limit_of_passwords(
    api: Api, settings_factory: Callable[..., Settings]
) -> None:
    """F2: 100 wrong passwords at once run 10 hashes; the right one in the burst is refused."""
    await api.register("alice", password=RIGHT)
    before = _checks()
    with use_settings(settings_factory(login_per_account=RateLimit(10, 900))):
        attempts = [_login("alice@example.com", "wrong-password") for _ in range(100)]
        attempts[25] = _login("alice@example.com", RIGHT)
        answers = await asyncio.gather(*(api.post("/api/users/login", json=body) for body in attempts))
        after_burst = await api.post("/api/users/login", json=_login("alice@example.com", RIGHT))

    statuses = [answer.status_code for answer in answers]
    assert _checks() - before == 10
    assert statuses.count(429) == 90
    assert after_burst.status_code == 429
    assert all(status in (401, 429) for position, status in enumerate(statuses) if position != 25)


async def test_at_most_the_configured_number_of_hashes_run_at_once(
    api: Api, settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Login memory: a burst of 20 logins runs 2 argon2id hashes at a time, the rest queue."""
    await api.register("alice", password=RIGHT)
    running, peak, lock = 0, 0, threading.Lock()
    verify = passwords._verify

    def counted(hashed: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            return verify(hashed, password)
        finally:
            with lock:
                running -= 1

    monkeypatch.setattr(passwords, "_verify", counted)
    with use_settings(settings_factory(password_hash_concurrency=2)):
        answers = await asyncio.gather(
            *(api.post("/api/users/login", json=_login("alice@example.com", RIGHT)) for _ in range(20))
        )

    assert [answer.status_code for answer in answers] == [200] * 20
    assert peak == 2


async def test_a_cancelled_login_keeps_its_hash_slot_until_the_hash_ends(
    settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thread of a cancelled request goes on hashing: it must still count as running."""
    running, peak, lock = 0, 0, threading.Lock()

    def slow(hashed: str, password: str) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.3)
        with lock:
            running -= 1
        return False

    monkeypatch.setattr(passwords, "_verify", slow)
    with use_settings(settings_factory(password_hash_concurrency=1)):
        first = asyncio.ensure_future(passwords.verify_password(None, "x"))
        await asyncio.sleep(0.05)
        first.cancel()
        await asyncio.gather(*(passwords.verify_password(None, "x") for _ in range(2)))
    assert peak == 1
