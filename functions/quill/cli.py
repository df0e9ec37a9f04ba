"""The image's ``quill`` command: ``quill serve`` (how every function starts) and ``quill migrate``.

Nothing else is here, so building this parser imports no other command: the dev and ops
commands (``quill dev``, ``events``, ``bench``, ``deploy``) live in ``quill_tools.cli``,
which adds its commands to these two and is the ``quill`` a ``pip install`` writes.

Each command builds the ``Settings`` it runs with (``quill.settings``: the environment,
plus what the command itself decides, such as the function ``quill serve`` serves) and
installs them; it never edits the environment.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quill.settings import Settings

__all__ = [
    "DEV_SHARED",
    "DEV_STATE",
    "add_commands",
    "build_parser",
    "data_option",
    "default_port",
    "dev_state",
    "main",
    "serve_app",
    "settings_or_exit",
]

# What `quill dev` (quill_tools) leaves for the other commands run beside it: its servers
# and broker. `quill migrate` reads it too, so it migrates the database quill dev runs.
DEV_STATE = "dev.json"
DEV_SHARED = ("database_url", "redis_url", "k_sink")


def _migrate(database_url: str) -> None:
    from quill.migrate import migrate

    applied = migrate(database_url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}", flush=True)


def settings_or_exit(**options: Any) -> Settings:
    """This command's settings, or a stop now, with the variable's name, rather than on the
    first request. ``options`` are ``load_settings``'s ``defaults`` and ``overrides``."""
    from quill.settings import ConfigError, load_settings

    try:
        return load_settings(**options)
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def dev_state(data: str) -> dict[str, Any]:
    """What a ``quill dev`` using this data folder left for the other commands, if any."""
    path = Path(data) / DEV_STATE
    if not path.is_file():
        return {}
    found = json.loads(path.read_text(encoding="utf-8"))
    return {name: found[name] for name in DEV_SHARED if name in found}


def serve_app(app: Any, function: str, host: str, port: int) -> None:
    import uvicorn

    from quill.serving import http_protocol

    print(f"quill: {function} listening on http://{host}:{port}", flush=True)
    # Everything imported so far lives as long as the process: out of the collector's
    # sight, a full collection no longer walks it (shorter pauses, fewer p99 spikes).
    # Then the collector runs again, off since ``main`` (a no-op where it was on). The few
    # cycles of garbage the start made are frozen too (~1k objects of ~60k): a collection
    # to free them first would cost more of the start than they hold.
    gc.freeze()
    gc.enable()
    # Bounded: idle keep-alive connections close after 5 s, and past 1000 concurrent
    # requests a replica answers 503 at once rather than queueing without limit.
    # No function speaks WebSocket: ws="none" spares every cold start the import of
    # uvicorn's WebSocket protocol and the websockets package (~10 ms).
    # proxy_headers=False: Quill alone decides the client's address (quill.http.client_ip,
    # from TRUSTED_PROXY_HOPS); uvicorn's default trusts X-Forwarded-For from 127.0.0.1,
    # which is every local client and, in a cluster, Knative's queue-proxy.
    # server_header=False: no "server: uvicorn" banner.
    uvicorn.run(
        app,
        host=host,
        port=port,
        http=http_protocol(),
        proxy_headers=False,
        server_header=False,
        ws="none",
        access_log=False,
        log_level="warning",
        lifespan="on",
        timeout_keep_alive=5,
        limit_concurrency=1000,
    )


def cmd_migrate(args: argparse.Namespace) -> None:
    from quill.settings import ConfigError, read

    # Only the database: the migrations Job sets DATABASE_URL alone, and the image's
    # QUILL_ENV=prod must not make it ask for JWT keys or anything else it never uses.
    try:
        _migrate(read("database_url", defaults=dev_state(args.data_dir)))
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> None:
    from quill.serving import create_app
    from quill.settings import use_settings

    with use_settings(settings_or_exit(overrides={"function": args.function})):
        serve_app(create_app(args.function), args.function, args.host, args.port)


def default_port() -> int:
    from quill.settings import ConfigError, read

    try:
        port: int = read("port")
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    return port


def data_option() -> argparse.ArgumentParser:
    """The ``--data-dir`` option of the commands that find a running ``quill dev``'s servers."""
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir", dest="data_dir", default=".quill", help="folder of quill dev's local data (default .quill)"
    )
    return data


def add_commands(commands: Any, data: argparse.ArgumentParser, port: int) -> None:
    """Add ``migrate`` and ``serve`` to a subparsers group (this parser's, or quill_tools')."""
    migrate = commands.add_parser("migrate", parents=[data], help="apply pending SQL migrations to DATABASE_URL")
    migrate.set_defaults(run=cmd_migrate)

    serve = commands.add_parser("serve", help="serve one function on its own, as its Knative Service does")
    serve.add_argument("function", help="login, profile, posts, cache, search, importer, deadletter, outbox or bundle")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=port)
    serve.set_defaults(run=cmd_serve)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quill",
        description="Quill: a RealWorld blog backend as scale-to-zero functions.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    add_commands(commands, data_option(), default_port())
    return parser


def main(argv: list[str] | None = None) -> None:
    # A start makes ~100k objects (modules, classes, functions), nearly all of which live as
    # long as the process. Collecting while they are made only walks them again and again:
    # ~10% of a cold start here. So the collector waits: ``serve_app`` freezes what the start
    # made and turns it back on before serving; any other end of a command turns it on here.
    gc.disable()
    try:
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        args.run(args)
    finally:
        gc.enable()


if __name__ == "__main__":
    main()
