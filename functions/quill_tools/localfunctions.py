"""``/_functions/<name>/``: each function target behind its own edge, as ``quill dev``
serves it. The broker delivers there, in process where it can (``serving``)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from quill.errors import NotFoundError
from quill.http import error_response
from quill.routing import load_function
from quill.serving import create_app

__all__ = ["PREFIX", "LocalFunctions"]

PREFIX = "/_functions/"


class LocalFunctions:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._apps: dict[str, ASGIApp] = {}  # built on first delivery

    def url_of(self, name: str) -> str:
        return f"{self.base_url}{PREFIX}{name}/"

    def serving(self, url: str) -> ASGIApp | None:
        """This object, for the URL of one of its functions: a delivery there is a call."""
        return self if url.startswith(self.base_url + PREFIX) else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        name = scope["path"].split("/")[2]
        try:
            load_function(name)
        except LookupError:
            await error_response(NotFoundError({"function": ["not found"]}))(scope, receive, send)
            return
        if name not in self._apps:
            self._apps[name] = create_app(name)
        await self._apps[name](scope, receive, send)
