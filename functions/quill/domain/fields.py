"""Reading client-sent fields into typed values, collecting every problem into one 422.

This is the only place that decides what a blank, a wrong type or a too-long value
means, so every route (and later the importer) answers the same way.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from typing import Any, Final

from quill.errors import ValidationError

__all__ = [
    "EMAIL",
    "LINE",
    "NO_NUL",
    "TAG",
    "TEXT",
    "UNSET",
    "USERNAME",
    "USERNAME_MAX",
    "Fields",
    "Unset",
    "normal_username",
]


class Unset(enum.Enum):
    """A field the client did not send (as opposed to one sent as null)."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET

BLANK = "can't be blank"

# The same patterns stand in docs/openapi.yml (a test keeps them equal), so what the
# document promises is exactly what the code accepts. Control characters are C0, DEL and C1.
NO_NUL = r"^[^\x00]*$"
TEXT = r"^[^\x00]*[^\s\x00][^\x00]*$"
# One line of printable text (a title, a tag): no control character at all.
LINE = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
TAG = LINE
# A username is NFKC-normalised first (full-width and other compatibility forms become the
# plain letters they look like), then may hold no space, "/", control character, nor
# anything invisible: every format character (Unicode category Cf: zero-width space, soft
# hyphen, bidi controls, tag characters...), the Hangul fillers, and private-use characters.
# So "alice\u200b" and the full-width "\uff41lice" cannot stand beside "alice". The
# published pattern covers the Basic Multilingual Plane only, in escapes that Python and
# JavaScript (the OpenAPI dialect) read alike; the few format characters beyond it are
# refused too, by ``_INVISIBLE_BEYOND_BMP``, and the document says so.
_INVISIBLE = (
    r"\u00ad\u0600-\u0605\u061c\u06dd\u070f\u0890-\u0891\u08e2\u180e\u200b-\u200f\u202a-\u202e\u2060-"
    r"\u2064\u2066-\u206f\ufeff\ufff9-\ufffb\u115f\u1160\u3164\uffa0\ue000-\uf8ff"
)
USERNAME = r"^[^\s/\x00-\x1f\x7f-\x9f" + _INVISIBLE + r"]+$"
USERNAME_MAX = 64
_INVISIBLE_BEYOND_BMP = re.compile(
    r"[\U000110bd\U000110cd\U00013430-\U00013438\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    r"\U000e0001\U000e0020-\U000e007f\U000f0000-\U0010ffff]"
)
EMAIL = r"^[^\s@\x00-\x1f\x7f-\x9f]+@[^\s@\x00-\x1f\x7f-\x9f]+\.[^\s@\x00-\x1f\x7f-\x9f]+$"

_LINE = re.compile(LINE)
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

    def required(self, name: str, max_length: int, *, line: bool = False) -> str:
        """A string that must be present and not blank; a ``line`` holds no control character."""
        value = self._data.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            self.fail(name, BLANK)
            return ""
        text = self._string(name, value, max_length) or ""
        if line and text and not _LINE.fullmatch(text):
            self.fail(name, "must not contain control characters")
            return ""
        return text

    def changed(self, name: str, max_length: int, *, line: bool = False) -> str | Unset:
        """An optional update of a field that can never be blank or null."""
        if name not in self._data:
            return UNSET
        return self.required(name, max_length, line=line)

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
            if len(item) > max_length or not _LINE.fullmatch(item):
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
            raise ValidationError(self.errors)


def normal_username(username: str) -> str:
    """The one spelling a username is stored and compared in (see ``USERNAME``)."""
    return unicodedata.normalize("NFKC", username)


def check_username(fields: Fields, username: str | Unset) -> None:
    """``username`` is already in its normal form (``normal_username``), which may be longer
    than what was sent (one character can expand to several): the limit counts this form."""
    if not isinstance(username, str) or not username.strip():
        return
    if len(username) > USERNAME_MAX:
        fields.fail("username", f"is too long (maximum is {USERNAME_MAX} characters)")
    elif not _USERNAME.fullmatch(username) or _INVISIBLE_BEYOND_BMP.search(username):
        fields.fail("username", "is invalid (no spaces, slashes, control or invisible characters)")


def check_email(fields: Fields, email: str | Unset) -> None:
    if isinstance(email, str) and email.strip() and not _EMAIL.fullmatch(email):
        fields.fail("email", "is invalid")


def check_password(fields: Fields, password: str | Unset) -> None:
    if isinstance(password, str) and password and len(password) < 8:
        fields.fail("password", "is too short (minimum is 8 characters)")
