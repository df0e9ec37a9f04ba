"""The client's address: the peer, or the trusted X-Forwarded-For entry, never a loopback hop."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from quill.http import client_ip
from quill.settings import Settings, use_settings


def _request(forwarded: str) -> Request:
    headers = [(b"x-forwarded-for", forwarded.encode())] if forwarded else []
    return Request({"type": "http", "headers": headers, "client": ("127.0.0.1", 5000)})


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (0, "198.51.100.7", "127.0.0.1"),
        (1, "", "127.0.0.1"),
        (1, "198.51.100.7", "198.51.100.7"),
        (1, "203.0.113.1, 198.51.100.7, 127.0.0.1, ::1, ::ffff:127.0.0.1", "198.51.100.7"),
        (2, "203.0.113.1, 198.51.100.7, 127.0.0.1", "203.0.113.1"),
        (2, "198.51.100.7", "127.0.0.1"),
    ],
)
def test_the_address_is_the_trusted_hop_and_loopback_entries_never_count(
    hops: int, forwarded: str, expected: str
) -> None:
    with use_settings(Settings(trusted_proxy_hops=hops)):
        assert client_ip(_request(forwarded)) == expected
