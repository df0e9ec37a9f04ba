"""The ``quill`` command: run the bundle locally, apply migrations, serve one function, events."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

__all__ = ["main"]

DEV_ENV = "dev.env"


def _migrate(database_url: str) -> None:
    from quill.migrate import migrate

    applied = migrate(database_url)
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}", flush=True)


def _check_settings() -> None:
    from quill.settings import ConfigError, load_settings

    try:
        load_settings()  # fail now, with the variable's name, rather than on the first request
    except ConfigError as exc:
        raise SystemExit(f"configuration error: {exc}") from None


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


def _use_dev_env(data: str) -> None:
    """Outside ``quill dev``, reach the servers and broker it runs (it leaves them in ``.quill/dev.env``).

    Only when no other database is configured: a ``DATABASE_URL`` of another setup wins.
    """
    path = Path(data) / DEV_ENV
    if not path.is_file():
        return
    found = dict(line.partition("=")[::2] for line in path.read_text(encoding="utf-8").splitlines() if "=" in line)
    if os.environ.get("DATABASE_URL", found.get("DATABASE_URL")) != found.get("DATABASE_URL"):
        return
    for name, value in found.items():
        os.environ.setdefault(name, value)


def cmd_migrate(args: argparse.Namespace) -> None:
    from quill.settings import load_settings

    _use_dev_env(args.data_dir)
    _migrate(load_settings().database_url)


def cmd_serve(args: argparse.Namespace) -> None:
    from quill.serving import create_app

    os.environ["FUNCTION_TARGET"] = args.function
    _check_settings()
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

    data = Path(args.data_dir).resolve()
    base_url = f"http://{args.host}:{args.port}"
    with ExitStack() as stack:
        wants_postgres = not os.environ.get("DATABASE_URL")
        wants_redis = not os.environ.get("REDIS_URL")
        if wants_postgres or wants_redis:
            print(f"quill: starting embedded servers with data under {data}", flush=True)
            servers = embedded.start(data, stack, postgres=wants_postgres, redis=wants_redis)
            if wants_postgres:
                os.environ["DATABASE_URL"] = servers.database_url
            if wants_redis:
                os.environ["REDIS_URL"] = servers.redis_url
        os.environ.setdefault("JWT_DEV_KEY_PATH", str(data / "dev-jwt-key.pem"))
        os.environ.setdefault("DB_POOL_MAX", "10")  # every function and the broker share this process
        os.environ.setdefault("LOG_JSON", "false" if sys.stdout.isatty() else "true")
        os.environ["FUNCTION_TARGET"] = "bundle"
        os.environ["K_SINK"] = f"{base_url}/_broker/quill/default"
        _check_settings()
        data.mkdir(parents=True, exist_ok=True)
        (data / DEV_ENV).write_text(
            "".join(f"{name}={os.environ[name]}\n" for name in ("DATABASE_URL", "REDIS_URL", "K_SINK")),
            encoding="utf-8",
        )
        _migrate(os.environ["DATABASE_URL"])
        from quill.devserver import DevServer

        server = DevServer(base_url)
        print(f"quill: broker ingress (K_SINK) at {server.sink}", flush=True)
        _run(server, "bundle", args.host, args.port)


def cmd_events(args: argparse.Namespace) -> None:
    from quill import eventscli

    _use_dev_env(args.data_dir)
    _check_settings()
    eventscli.run(args)


def cmd_deploy(args: argparse.Namespace) -> None:
    from quill.deploy import cli

    cli.run(args)


def cmd_bench(args: argparse.Namespace) -> None:
    from quill.bench import cli

    cli.run(args)


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
    default_port = int(os.environ.get("PORT", "8080"))

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
