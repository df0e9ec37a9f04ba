"""Reading client-sent fields into typed values, collecting every problem into one 422.

This is the only place that decides what a blank, a wrong type or a too-long value
means, so every route (and later the importer) answers the same way.
"""

from __future__ import annotations

import enum
import re
from typing import Any, Final

from quill.errors import Unprocessable

__all__ = ["EMAIL", "NO_NUL", "TAG", "TEXT", "UNSET", "USERNAME", "Fields", "Unset"]


class Unset(enum.Enum):
    """A field the client did not send (as opposed to one sent as null)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET

BLANK = "can't be blank"

# The same patterns stand in docs/openapi.yml (a test keeps them equal), so what the
# document promises is exactly what the code accepts. Control characters are C0, DEL and C1.
NO_NUL = r"^[^\x00]*$"
TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"
TAG = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
USERNAME = r"^[^\s/\x00-\x1f\x7f-\x9f]+$"
EMAIL = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+\.[^\s@\x00-\x1f\x7f-\x9f]+$"

_TAG = re.compile(TAG)
_USERNAME = re.compile(USERNAME)
_EMAIL = re.compile(EMAIL)


class Fields:
    def __init__(self, data: dict[str, Any]) -> None:
        self._data = data
        self.errors: dict[str, list[str]] = {}

    def fail(self, name: str, message: str) -> None:
        self.errors.setdefault(name, []).append(message)

    def _string(self, name: str, value: Any, max_length: int) -> str | None:
        if not isinstance(value, str):
            self.fail(name, "must be a string")
            return None
        if "\x00" in value:
            self.fail(name, "must not contain NUL characters")
            return None
        if len(value) > max_length:
            self.fail(name, f"is too long (maximum is {max_length} characters)")
            return None
        return value

    def required(self, name: str, max_length: int) -> str:
        """A string that must be present and not blank."""
        value = self._data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.fail(name, BLANK)
            return ""
        return self._string(name, value, max_length) or ""

    def changed(self, name: str, max_length: int) -> str | Unset:
        """An optional update of a field that can never be blank or null."""
        if name not in self._data:
            return UNSET
        return self.required(name, max_length)

    def nullable(self, name: str, max_length: int) -> str | Unset | None:
        """An optional field where null and "" both mean "no value"."""
        if name not in self._data:
            return UNSET
        value = self._data[name]
        if value is None or value == "":
            return None
        return self._string(name, value, max_length)

    def tags(self, name: str, *, max_tags: int = 20, max_length: int = 64) -> tuple[str, ...] | Unset:
        """A tag list in alphabetical (code point) order, duplicates dropped, as the RealWorld
        suites expect it back; null is an error, [] clears. Stored sorted, so every read
        (lists, feed, events) returns it sorted with no work of its own."""
        if name not in self._data:
            return UNSET
        value = self._data[name]
        if not isinstance(value, list):
            self.fail(name, "must be a list of strings" if value is not None else BLANK)
            return ()
        tags: list[str] = []
        for item in value:
            if not isinstance(item, str) or not item.strip():
                self.fail(name, "must contain only non-blank strings")
                return ()
            if len(item) > max_length or not _TAG.match(item):
                self.fail(name, f"must contain tags of at most {max_length} printable characters")
                return ()
            tag = item.strip()
            if tag not in tags:
                tags.append(tag)
        if len(tags) > max_tags:
            self.fail(name, f"is too long (maximum is {max_tags} tags)")
            return ()
        return tuple(sorted(tags))

    def done(self) -> None:
        if self.errors:
            raise Unprocessable(self.errors)


def check_username(fields: Fields, username: str | Unset) -> None:
    if isinstance(username, str) and username.strip() and not _USERNAME.match(username):
        fields.fail("username", "is invalid (no spaces, slashes or control characters)")


def check_email(fields: Fields, email: str | Unset) -> None:
    if isinstance(email, str) and email.strip() and not _EMAIL.match(email):
        fields.fail("email", "is invalid")


def check_password(fields: Fields, password: str | Unset) -> None:
    if isinstance(password, str) and password and len(password) < 8:
        fields.fail("password", "is too short (minimum is 8 characters)")
