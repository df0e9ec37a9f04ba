"""Accounts: registration, credentials and the current user's settings. Owns ``users``.

An email is stored, compared and rate-limited in one canonical form, ``canonical_email``:
NFC, with ASCII letters lowered and nothing else changed. SQL never lowers an email
itself (``lower()`` folds by the server's locale, Python's by Unicode's: ``İ`` gave two
spellings of one account, each with its own login limit). Migration 0007 applies the
same rule to the rows stored before, through the SQL function ``quill_canonical_email``;
a test keeps the two equal.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from typing import Any

import psycopg.errors

from quill import events
from quill.auth import sessions
from quill.auth.passwords import hash_password, verify_password
from quill.db import Connection, autocommit
from quill.domain import fields as f
from quill.domain.outbox import transaction
from quill.domain.values import User
from quill.errors import ConflictError, UnauthenticatedError

__all__ = [
    "Registration",
    "UserChanges",
    "authenticate",
    "canonical_email",
    "get",
    "id_of",
    "parse_changes",
    "parse_registration",
    "register",
    "update",
]

_INSERT = """
INSERT INTO users (username, email, password_hash)
VALUES (%(username)s, %(email)s, %(password_hash)s)
RETURNING id, username, email, bio, image
"""

_TAKEN = """
SELECT lower(username) = lower(%(username)s) AS username_taken, email = %(email)s AS email_taken
FROM users
WHERE (lower(username) = lower(%(username)s) OR email = %(email)s)
  AND id IS DISTINCT FROM %(user_id)s
"""

_BY_EMAIL = "SELECT id, username, email, bio, image, password_hash FROM users WHERE email = %s"
_BY_ID = "SELECT id, username, email, bio, image FROM users WHERE id = %s"

_UPDATE = """
UPDATE users SET
    username = coalesce(%(username)s, username),
    email = coalesce(%(email)s, email),
    password_hash = coalesce(%(password_hash)s, password_hash),
    bio = CASE WHEN %(set_bio)s THEN %(bio)s ELSE bio END,
    image = CASE WHEN %(set_image)s THEN %(image)s ELSE image END,
    updated_at = date_trunc('milliseconds', clock_timestamp())
WHERE id = %(user_id)s
RETURNING id, username, email, bio, image
"""


_NEVER = object()
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def canonical_email(email: str) -> str:
    """The one form of an email that is stored, looked up, kept unique and rate-limited."""
    return unicodedata.normalize("NFC", email).translate(_ASCII_LOWER)


@dataclass(frozen=True)
class Registration:
    """A validated registration."""

    username: str
    email: str
    password: str


@dataclass(frozen=True)
class UserChanges:
    """A validated update of the caller's own record; a field left ``UNSET`` keeps its value."""

    username: str | f.Unset = f.UNSET
    email: str | f.Unset = f.UNSET
    password: str | f.Unset = f.UNSET
    bio: str | f.Unset | None = f.UNSET
    image: str | f.Unset | None = f.UNSET


def parse_registration(data: dict[str, Any]) -> Registration:
    fields = f.Fields(data)
    registration = Registration(
        username=f.normal_username(fields.required("username", f.USERNAME_MAX)),
        email=fields.required("email", 254),
        password=fields.required("password", 256),
    )
    f.check_username(fields, registration.username)
    f.check_email(fields, registration.email)
    f.check_password(fields, registration.password)
    fields.done()
    return Registration(registration.username, canonical_email(registration.email), registration.password)


def parse_changes(data: dict[str, Any], current: User) -> UserChanges:
    """The changes asked for. Settings forms send the whole form back: a username or email
    sent exactly as ``current`` has it is no change, so an account stored before a rule was
    tightened (an invisible character, a full-width name) can still save its bio."""
    data = {name: value for name, value in data.items() if value != getattr(current, name, _NEVER)}
    fields = f.Fields(data)
    username = fields.changed("username", f.USERNAME_MAX)
    changes = UserChanges(
        username=f.normal_username(username) if isinstance(username, str) else username,
        email=fields.changed("email", 254),
        # Omitted keeps the password; "" and null are refused (422), as the RealWorld suites check.
        password=fields.changed("password", 256),
        bio=fields.nullable("bio", 10_000),
        image=fields.nullable("image", 2048),
    )
    f.check_username(fields, changes.username)
    f.check_email(fields, changes.email)
    f.check_password(fields, changes.password)
    fields.done()
    if isinstance(changes.email, str):
        return replace(changes, email=canonical_email(changes.email))
    return changes


def _user(row: dict[str, Any]) -> User:
    return User(row["id"], row["username"], row["email"], row["bio"], row["image"])


async def _refuse_taken(conn: Connection, username: str | None, email: str | None, user_id: int | None) -> None:
    cursor = await conn.execute(_TAKEN, {"username": username, "email": email, "user_id": user_id})
    errors: dict[str, list[str]] = {}
    for row in await cursor.fetchall():
        if row["username_taken"]:
            errors["username"] = ["has already been taken"]
        if row["email_taken"]:
            errors["email"] = ["has already been taken"]
    if errors:
        raise ConflictError(errors)


def _conflict_from(exc: psycopg.errors.UniqueViolation) -> ConflictError:
    constraint = exc.diag.constraint_name or ""
    field = "email" if "email" in constraint else "username"
    return ConflictError({field: ["has already been taken"]})


async def register(registration: Registration) -> tuple[User, sessions.Session]:
    """Create the account and its first session in one transaction."""
    password_hash = await hash_password(registration.password)
    try:
        async with transaction("login") as tx:
            await _refuse_taken(tx.conn, registration.username, registration.email, None)
            cursor = await tx.conn.execute(
                _INSERT,
                {"username": registration.username, "email": registration.email, "password_hash": password_hash},
            )
            row = await cursor.fetchone()
            assert row is not None
            await tx.emit(events.USER_REGISTERED, row["id"], {"id": row["id"], "username": row["username"]})
            session = await sessions.start(tx.conn, row["id"])
    except psycopg.errors.UniqueViolation as exc:  # lost a race with a concurrent registration
        raise _conflict_from(exc) from None
    return _user(row), session


async def authenticate(email: str, password: str) -> User:
    async with autocommit() as conn:
        cursor = await conn.execute(_BY_EMAIL, (canonical_email(email),))
        row = await cursor.fetchone()
    if not await verify_password(row["password_hash"] if row else None, password) or row is None:
        raise UnauthenticatedError({"credentials": ["invalid"]})
    return _user(row)


async def get(user_id: int) -> User | None:
    async with autocommit() as conn:
        cursor = await conn.execute(_BY_ID, (user_id,))
        row = await cursor.fetchone()
    return _user(row) if row else None


async def id_of(conn: Connection, username: str) -> int | None:
    """The id of ``username``, inside the caller's transaction (the importer's author)."""
    row = await (await conn.execute("SELECT id FROM users WHERE username = %s", (username,))).fetchone()
    return int(row["id"]) if row else None


async def update(user: User, changes: UserChanges, session_id: str) -> User:
    """Apply ``changes``; the views that show the old profile are dropped after commit (``reads.stale``).

    A new password ends every session but the caller's (``session_id``).
    """
    password_hash = await hash_password(changes.password) if isinstance(changes.password, str) else None
    username = changes.username if isinstance(changes.username, str) else None
    email = changes.email if isinstance(changes.email, str) else None
    try:
        async with transaction("login") as tx:
            if username is not None or email is not None:
                await _refuse_taken(tx.conn, username, email, user.id)
            cursor = await tx.conn.execute(
                _UPDATE,
                {
                    "user_id": user.id,
                    "username": username,
                    "email": email,
                    "password_hash": password_hash,
                    "set_bio": not isinstance(changes.bio, f.Unset),
                    "bio": None if isinstance(changes.bio, f.Unset) else changes.bio,
                    "set_image": not isinstance(changes.image, f.Unset),
                    "image": None if isinstance(changes.image, f.Unset) else changes.image,
                },
            )
            row = await cursor.fetchone()
            assert row is not None
            updated = _user(row)
            revoked = await sessions.revoke_others(tx.conn, user.id, session_id) if password_hash else []
            await tx.emit(
                events.USER_UPDATED,
                updated.id,
                {
                    "id": updated.id,
                    "username": updated.username,
                    "previousUsername": user.username,
                    "bio": updated.bio,
                    "image": updated.image,
                },
            )
    except psycopg.errors.UniqueViolation as exc:
        raise _conflict_from(exc) from None
    await sessions.forget(*revoked)
    return updated
