"""Keep-alive HTTP/1.1 connections to an ``http://`` event sink, for the outbox's sends.

The broker's ingress takes one event per POST, so a busy writer makes one request per
event. Through httpx each of those cost more CPU than the write that caused it (py-spy on
a served create: ~35% of the process, against ~5% here). The request is the smallest
one HTTP/1.1 allows (request line, ``host``, ``content-length``, the event's headers)
and the reply is read only as far as its status and framing. An ``https://`` sink, or
anything this client does not speak, goes through httpx (``quill.events``).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Reply", "Sink", "SinkError", "is_plain_http"]

# Idle connections kept per sink; a burst past it opens more and closes them after.
_MAX_IDLE = 64


@dataclass(frozen=True)
class Reply:
    """What the broker (or any HTTP sink) answered to one delivery."""

    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


class SinkError(Exception):
    """The sink could not be reached, or answered something that is not HTTP/1.x."""


def is_plain_http(url: str) -> bool:
    return url.startswith("http://")


class Sink:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.host = parts.hostname or "localhost"
        self.port = parts.port or 80
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self._head = f"POST {target} HTTP/1.1\r\nhost: {parts.netloc}\r\n".encode("latin-1")
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(self, headers: list[tuple[str, str]], body: bytes) -> Reply:
        """POST ``body``; return the reply. A connection the sink closed while idle is
        replaced: the request never reached it."""
        fields = "".join(f"{name}: {value}\r\n" for name, value in headers)
        request = self._head + f"content-length: {len(body)}\r\n{fields}\r\n".encode("latin-1") + body
        while True:
            reused = bool(self._idle)
            reader, writer = self._idle.pop() if reused else await self._open()
            try:
                writer.write(request)
                reply, keep = await _response(reader)
            except BaseException as exc:  # a half-used connection is never reused, whatever stopped it
                writer.close()
                if reused and isinstance(exc, (OSError, asyncio.IncompleteReadError)):
                    continue
                if isinstance(exc, (asyncio.IncompleteReadError, ValueError)):
                    raise SinkError(f"bad reply: {exc}") from exc
                raise
            if keep and len(self._idle) < _MAX_IDLE:
                self._idle.append((reader, writer))
            else:
                writer.close()
            return reply

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self.host, self.port)

    def close(self) -> None:
        idle, self._idle = self._idle, []
        for _, writer in idle:
            writer.close()


async def _response(reader: asyncio.StreamReader) -> tuple[Reply, bool]:
    """The reply; whether the connection stays open."""
    line = await reader.readline()
    if not line:
        raise ConnectionResetError("the sink closed the connection")
    version, status_text = line.split(None, 2)[:2]
    if not version.startswith(b"HTTP/1."):
        raise ValueError(f"not an HTTP/1.x status line: {line[:40]!r}")
    status = int(status_text)
    keep = version == b"HTTP/1.1"
    headers: dict[str, str] = {}
    while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    connection = headers.get("connection", "").lower()
    keep = connection == "keep-alive" or (keep and connection != "close")
    if headers.get("transfer-encoding", "").lower().endswith("chunked"):
        chunks = []
        while size := int((await reader.readline()).split(b";")[0], 16):
            chunks.append((await reader.readexactly(size + 2))[:-2])
        while await reader.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        body = b"".join(chunks)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif status >= 200 and status not in (204, 304):
        body = await reader.read()  # framed by the end of the connection
        keep = False
    else:
        body = b""
    return Reply(status, headers, body), keep
