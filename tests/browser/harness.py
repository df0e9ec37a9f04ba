"""What the browser journey needs besides Quill: the frontend's build (cached), a static server, playwright-core.

Nothing about any particular frontend lives here. Which frontend to drive, and how its API base URL goes in at
build time, come from the environment (see ``README.md`` beside this file):

- ``QUILL_BROWSER_FRONTEND``: a folder holding the frontend's source (with its ``package.json``), a tarball of
  it, or ``npm:<name>@<version>`` for a frontend published on the npm registry (``npm pack`` brings its tarball).
- ``QUILL_BROWSER_FRONTEND_ENV``: space-separated ``NAME=value`` assignments for the build, where ``{origin}``
  stands for Quill's origin (``http://127.0.0.1:<port>``) and ``{api}`` for ``{origin}/api``.
- ``QUILL_BROWSER_FRONTEND_BUILD``: the build command (default ``npm run build``).
- ``QUILL_BROWSER_FRONTEND_DIST``: the folder the build writes, relative to the source (default ``dist``).

Everything is cached under ``${XDG_CACHE_HOME:-~/.cache}/quill-browser/``: the installed dependencies by a hash of
the source, the built site by a hash of the source, the build settings and the API base URL. npm keeps its own
cache as usual.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

HERE = Path(__file__).resolve().parent
PLAYWRIGHT_CORE_VERSION = "1.65.1"
CHROMIUM = os.environ.get("QUILL_BROWSER_CHROMIUM", "/usr/bin/chromium")
# Read before any fixture replaces HOME for the processes it starts.
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "quill-browser"
# Files of a source tree that are not source: installed or built output, VCS data.
_NOT_SOURCE = {"node_modules", ".git", "dist", "build", ".svelte-kit", ".next", ".angular", ".cache"}


@dataclass(frozen=True)
class FrontendSpec:
    source: str  # a folder, or npm:<name>@<version>
    env: str  # NAME=value ... with {origin} and {api}
    build: str
    dist: str

    @classmethod
    def from_env(cls) -> FrontendSpec | None:
        source = os.environ.get("QUILL_BROWSER_FRONTEND", "").strip()
        if not source:
            return None
        return cls(
            source=source,
            env=os.environ.get("QUILL_BROWSER_FRONTEND_ENV", ""),
            build=os.environ.get("QUILL_BROWSER_FRONTEND_BUILD", "npm run build"),
            dist=os.environ.get("QUILL_BROWSER_FRONTEND_DIST", "dist"),
        )

    def build_env(self, origin: str) -> dict[str, str]:
        assignments: dict[str, str] = {}
        for item in shlex.split(self.env):
            name, sep, value = item.partition("=")
            if not sep or not name:
                raise ValueError(f"QUILL_BROWSER_FRONTEND_ENV: {item!r} is not NAME=value")
            assignments[name] = value.replace("{origin}", origin).replace("{api}", origin + "/api")
        return assignments


def log(message: str) -> None:
    print(f"browser: {message}", flush=True)


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> None:
    log(f"$ {shlex.join(command)}  (in {cwd})")
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{shlex.join(command)} exited {done.returncode}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
        )


def _tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if _NOT_SOURCE.intersection(relative.parts) or not path.is_file():
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def _source_tree(spec: FrontendSpec) -> Path:
    """A folder with the frontend's source: the given one, or the npm package unpacked into the cache."""
    given = Path(spec.source).expanduser()
    if spec.source.startswith("npm:") or given.is_file():
        return _unpacked(spec.source)
    folder = given.resolve()
    if not (folder / "package.json").is_file():
        raise FileNotFoundError(f"QUILL_BROWSER_FRONTEND={spec.source}: no package.json there")
    return folder


def _unpacked(source: str) -> Path:
    """An npm package (``npm:<name>@<version>``) or a local tarball, unpacked once into the cache."""
    tarball = Path(source).expanduser()
    identity = tarball.read_bytes() if tarball.is_file() else source.encode()
    unpacked = CACHE / "unpacked" / hashlib.sha256(identity).hexdigest()[:20]
    if (unpacked / "package.json").is_file():
        return unpacked
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        if not tarball.is_file():
            _run(["npm", "pack", source.removeprefix("npm:"), "--pack-destination", scratch], cwd=Path(scratch))
            (tarball,) = Path(scratch).glob("*.tgz")
        with tarfile.open(tarball) as archive:
            archive.extractall(Path(scratch) / "x", filter="data")
        # npm's tarballs hold one folder (``package/``), GitHub's archives one named after the repository.
        roots = [path for path in (Path(scratch) / "x").iterdir() if path.is_dir()]
        root = (
            roots[0]
            if len(roots) == 1 and not (Path(scratch) / "x" / "package.json").is_file()
            else Path(scratch) / "x"
        )
        shutil.rmtree(unpacked, ignore_errors=True)
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(root, unpacked)
    return unpacked


def built_frontend(spec: FrontendSpec, api_origin: str) -> Path:
    """The frontend built for ``api_origin``: from the cache, or installed and built now (then cached)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    source = _source_tree(spec)
    source_hash = _tree_hash(source)
    env = spec.build_env(api_origin)
    key = hashlib.sha256(repr((source_hash, sorted(env.items()), spec.build, spec.dist)).encode()).hexdigest()[:20]
    site = CACHE / "sites" / key
    if (site / "index.html").is_file():
        log(f"frontend: cached build {site}")
        return site
    # One working copy per source: its node_modules survive a change of API URL or build settings.
    work = CACHE / "work" / source_hash
    if not (work / "node_modules").is_dir():
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(source, work, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
        # No install scripts: they download tools the build does not use (test runners' browsers and the like).
        install = ["npm", "install", "--ignore-scripts", "--no-package-lock", "--no-audit", "--no-fund"]
        _run([*install, "--legacy-peer-deps"], cwd=work)
    shutil.rmtree(work / spec.dist, ignore_errors=True)
    log(f"frontend: building with {env}")
    _run(shlex.split(spec.build), cwd=work, env=env)
    if not (work / spec.dist / "index.html").is_file():
        raise FileNotFoundError(f"the build wrote no {spec.dist}/index.html in {work}")
    partial = site.with_name(key + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.copytree(work / spec.dist, partial)
    partial.rename(site)
    return site


def playwright_core() -> Path:
    """playwright-core (pinned) installed once into the cache; never a browser download."""
    home = CACHE / f"playwright-core-{PLAYWRIGHT_CORE_VERSION}"
    module = home / "node_modules" / "playwright-core"
    if not (module / "package.json").is_file():
        home.mkdir(parents=True, exist_ok=True)
        _run(
            [
                "npm",
                "install",
                "--no-package-lock",
                "--no-save",
                "--ignore-scripts",
                f"playwright-core@{PLAYWRIGHT_CORE_VERSION}",
            ],
            cwd=home,
            env={"PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1"},
        )
    return module


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Static files, with ``index.html`` for any other path (single-page apps route in the browser)."""

    def __init__(self, *args: Any, extra: dict[str, tuple[str, bytes]], **kwargs: Any) -> None:
        self.extra = extra
        super().__init__(*args, **kwargs)

    def send_head(self) -> io.BytesIO | BinaryIO | None:
        path = self.path.split("?", 1)[0].split("#", 1)[0]
        if path in self.extra:
            content_type, body = self.extra[path]
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return io.BytesIO(body)
        if not Path(self.translate_path(path)).exists():
            self.path = "/index.html"
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


AVATAR_PATH = "/__quill_browser/avatar.svg"
_AVATAR = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
    b'<rect width="64" height="64" fill="#5cb85c"/></svg>'
)


@contextmanager
def static_server(root: Path, port: int = 0, pages: dict[str, tuple[str, bytes]] | None = None) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 (plus a small avatar image and ``pages``); yields the origin."""
    extra = {AVATAR_PATH: ("image/svg+xml", _AVATAR), **(pages or {})}
    handler = functools.partial(_Handler, directory=str(root), extra=extra)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
