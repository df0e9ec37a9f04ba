"""The ``quill`` command: run the bundle locally, apply migrations, serve one function, events.

Each command builds the ``Settings`` it runs with (``quill.settings``: the environment,
plus what the command itself decides, such as the function ``quill serve`` serves or the
embedded servers of ``quill dev``) and installs them; it never edits the environment.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from quill.settings import Settings

__all__ = ["main"]

# What `quill dev` leaves for the other commands run beside it: its servers and broker.
DEV_STATE = "dev.json"
_DEV_SHARED = ("database_url", "redis_url", "k_sink")


def _migrate(database_url: str) -> None:
    from quill.migrate import migrate

    applied = migrate(database_url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}", flush=True)


def _settings(**options: Any) -> Settings:
    """This command's settings, or a stop now, with the variable's name, rather than on the
    first request. ``options`` are ``load_settings``'s ``defaults`` and ``overrides``."""
    from quill.settings import ConfigError, load_settings

    try:
        return load_settings(**options)
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def _dev_state(data: str) -> dict[str, Any]:
    """What a ``quill dev`` using this data folder left for the other commands, if any."""
    path = Path(data) / DEV_STATE
    if not path.is_file():
        return {}
    found = json.loads(path.read_text(encoding="utf-8"))
    return {name: found[name] for name in _DEV_SHARED if name in found}


def _beside_dev(data: str) -> Settings:
    """Outside ``quill dev``, reach the servers and broker it runs, unless another database
    is configured: a ``DATABASE_URL`` of another setup wins, with nothing of quill dev's."""
    found = _dev_state(data)
    settings = _settings(defaults=found)
    if found and settings.database_url != found["database_url"]:
        return _settings()
    return settings


def _run(app: Any, function: str, host: str, port: int) -> None:
    import gc

    import uvicorn

    from quill.serving import http_protocol

    print(f"quill: {function} listening on http://{host}:{port}", flush=True)
    # Everything imported so far lives as long as the process: out of the collector's
    # sight, a full collection no longer walks it (shorter pauses, fewer p99 spikes).
    gc.freeze()
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
        _migrate(read("database_url", defaults=_dev_state(args.data_dir)))
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


def cmd_serve(args: argparse.Namespace) -> None:
    from quill.serving import create_app
    from quill.settings import use_settings

    with use_settings(_settings(overrides={"function": args.function})):
        _run(create_app(args.function), args.function, args.host, args.port)


def _interrupt_on_termination() -> None:
    """Make SIGTERM and SIGHUP stop ``quill dev`` the way Ctrl-C does.

    uvicorn handles SIGTERM while it serves, then raises it again after its shutdown, and
    Python's default for SIGTERM (and SIGHUP) is to die on the spot: the ExitStack that
    stops the embedded PostgreSQL and Redis never ran, and both outlived ``quill dev``.
    As a KeyboardInterrupt, a signal from a process manager, a container runtime, ``kill``
    or a closed terminal unwinds that stack, at any stage of the start-up too."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt)


def cmd_dev(args: argparse.Namespace) -> None:
    _interrupt_on_termination()
    try:
        _dev(args)
    except KeyboardInterrupt:  # the servers it started are stopped by now
        print("quill: stopped", flush=True)


def _dev(args: argparse.Namespace) -> None:
    from quill import embedded
    from quill.settings import use_settings

    data = Path(args.data_dir).resolve()
    base_url = f"http://{args.host}:{args.port}"
    # Where the environment says nothing: no database or Redis (so embedded ones start),
    # the dev key in the data folder, a pool for every function and the broker in one
    # process, and console logs on a terminal.
    defaults: Mapping[str, Any] = {
        "database_url": "",
        "redis_url": "",
        "jwt_dev_key_path": str(data / "dev-jwt-key.pem"),
        "db_pool_max": 10,
        "log_json": not sys.stdout.isatty(),
    }
    settings = _settings(
        defaults=defaults, overrides={"function": "bundle", "k_sink": f"{base_url}/_broker/quill/default"}
    )
    with ExitStack() as stack:
        if not settings.database_url or not settings.redis_url:
            print(f"quill: starting embedded servers with data under {data}", flush=True)
            servers = embedded.start(data, stack, postgres=not settings.database_url, redis=not settings.redis_url)
            settings = replace(
                settings,
                database_url=settings.database_url or servers.database_url,
                redis_url=settings.redis_url or servers.redis_url,
            )
        data.mkdir(parents=True, exist_ok=True)
        shared = {name: getattr(settings, name) for name in _DEV_SHARED}
        (data / DEV_STATE).write_text(json.dumps(shared, indent=2) + "\n", encoding="utf-8")
        _migrate(settings.database_url)
        from quill.devserver import DevServer

        with use_settings(settings):
            server = DevServer(base_url)
            print(f"quill: broker ingress (K_SINK) at {server.sink}", flush=True)
            _run(server, "bundle", args.host, args.port)


def cmd_events(args: argparse.Namespace) -> None:
    from quill import eventscli
    from quill.settings import use_settings

    with use_settings(_beside_dev(args.data_dir)):
        eventscli.run(args)


def cmd_deploy(args: argparse.Namespace) -> None:
    from quill.deploy import cli

    cli.run(args)


def cmd_bench(args: argparse.Namespace) -> None:
    from quill.bench import cli

    cli.run(args)


def _default_port() -> int:
    from quill.settings import ConfigError, read

    try:
        port: int = read("port")
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None
    return port


# Commands whose parsers need no other module: `quill serve` is how every function
# starts, and importing the events, bench and deploy command modules cost it ~30 ms.
_LIGHT = frozenset({"serve", "migrate", "dev"})


def build_parser(*, light: bool = False) -> argparse.ArgumentParser:
    """Every command's parser; ``light`` leaves out events, bench and deploy."""
    parser = argparse.ArgumentParser(
        prog="quill",
        description="Quill: a RealWorld blog backend as scale-to-zero functions.",
    )
    data = argparse.ArgumentParser(add_help=False)
    data.add_argument(
        "--data-dir", dest="data_dir", default=".quill", help="folder of quill dev's local data (default .quill)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    default_port = _default_port()

    dev = commands.add_parser(
        "dev",
        help="migrate, then serve every route, the local broker and the event functions on one port "
        "(embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)",
    )
    dev.add_argument("--data", "--data-dir", dest="data_dir", default=".quill", help="folder for local data")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=default_port)
    dev.set_defaults(run=cmd_dev)

    migrate = commands.add_parser("migrate", parents=[data], help="apply pending SQL migrations to DATABASE_URL")
    migrate.set_defaults(run=cmd_migrate)

    serve = commands.add_parser("serve", help="serve one function on its own, as its Knative Service does")
    serve.add_argument("function", help="login, profile, posts, cache, search, importer, deadletter, outbox or bundle")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=default_port)
    serve.set_defaults(run=cmd_serve)
    if light:
        return parser

    from quill.eventscli import add_parser as add_events_parser

    add_events_parser(commands, data).set_defaults(run=cmd_events)

    from quill.bench.cli import add_parser as add_bench_parser

    add_bench_parser(commands).set_defaults(run=cmd_bench)

    from quill.deploy.cli import add_parser as add_deploy_parser

    add_deploy_parser(commands).set_defaults(run=cmd_deploy)
    return parser


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    args = build_parser(light=bool(given) and given[0] in _LIGHT).parse_args(given)
    args.run(args)


if __name__ == "__main__":
    main()
