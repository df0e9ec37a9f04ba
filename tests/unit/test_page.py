"""``limit`` and ``offset``: parsed once per query string, refused every time they are bad."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from quill.errors import ValidationError
from quill.http import page


def _request(query: str) -> Request:
    return Request({"type": "http", "headers": [], "query_string": query.encode("latin-1")})


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", (20, 0)),
        ("limit=5&offset=10", (5, 10)),
        ("offset=3&limit=500", (100, 3)),
        ("limit=7&limit=9", (9, 0)),  # the last, as Starlette reads a repeated name
    ],
)
def test_a_page_is_read_from_the_query_and_the_same_query_reads_the_same(query: str, expected: tuple[int, int]) -> None:
    assert page(_request(query)) == expected
    assert page(_request(query)) == expected


@pytest.mark.parametrize("query", ["limit=abc", "limit=0", "offset=-1", "limit=%EF%BC%95"])
def test_a_bad_page_is_refused_every_time_it_is_asked_for(query: str) -> None:
    for _ in range(2):  # nothing is remembered for a query that failed
        with pytest.raises(ValidationError):
            page(_request(query))
