"""The ``quill`` command a ``pip install`` writes: the image's ``serve`` and ``migrate``
(``quill.cli``) plus ``dev``, ``events``, ``bench`` and ``deploy``.

``quill serve`` and ``quill migrate`` go straight to ``quill.cli``: building the other
commands' parsers imports their modules (~30 ms), which a function's cold start must not pay.
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

from quill import cli as runtime

if TYPE_CHECKING:
    from quill.settings import Settings

__all__ = ["build_parser", "main"]

# The commands the image has too: run by quill.cli alone, with none of these modules.
_RUNTIME = frozenset({"serve", "migrate"})


def _beside_dev(data: str) -> Settings:
    """Outside ``quill dev``, reach the servers and broker it runs, unless another database
    is configured: a ``DATABASE_URL`` of another setup wins, with nothing of quill dev's."""
    found = runtime.dev_state(data)
    settings = runtime.settings_or_exit(defaults=found)
    if found and settings.database_url != found["database_url"]:
        return runtime.settings_or_exit()
    return settings


def _migrate(database_url: str) -> None:
    """The runtime migrations, then the tooling's own (the local broker's tables)."""
    from quill.migrate import migrate

    applied = migrate(database_url) + migrate(database_url, package="quill_tools.migrations")
    print(f"migrations applied: {', '.join(applied) if applied else 'none (up to date)'}", flush=True)


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
    from quill.settings import use_settings
    from quill_tools import embedded

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
    settings = runtime.settings_or_exit(
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
        shared = {name: getattr(settings, name) for name in runtime.DEV_SHARED}
        (data / runtime.DEV_STATE).write_text(json.dumps(shared, indent=2) + "\n", encoding="utf-8")
        _migrate(settings.database_url)
        from quill_tools.devserver import DevServer

        with use_settings(settings):
            server = DevServer(base_url)
            print(f"quill: broker ingress (K_SINK) at {server.sink}", flush=True)
            runtime.serve_app(server, "bundle", args.host, args.port)


def cmd_events(args: argparse.Namespace) -> None:
    from quill.settings import use_settings
    from quill_tools import events

    with use_settings(_beside_dev(args.data_dir)):
        events.run(args)


def cmd_deploy(args: argparse.Namespace) -> None:
    from quill_tools.deploy import cli

    cli.run(args)


def cmd_bench(args: argparse.Namespace) -> None:
    from quill_tools.bench import cli

    cli.run(args)


def build_parser() -> argparse.ArgumentParser:
    """Every command's parser: quill dev, the image's two, then events, bench and deploy."""
    from quill_tools.bench.cli import add_parser as add_bench_parser
    from quill_tools.deploy.cli import add_parser as add_deploy_parser
    from quill_tools.events import add_parser as add_events_parser

    parser = argparse.ArgumentParser(
        prog="quill",
        description="Quill: a RealWorld blog backend as scale-to-zero functions.",
    )
    data = runtime.data_option()
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    default_port = runtime.default_port()

    dev = commands.add_parser(
        "dev",
        help="migrate, then serve every route, the local broker and the event functions on one port "
        "(embedded PostgreSQL/Redis unless DATABASE_URL/REDIS_URL are set)",
    )
    dev.add_argument("--data", "--data-dir", dest="data_dir", default=".quill", help="folder for local data")
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=default_port)
    dev.set_defaults(run=cmd_dev)

    runtime.add_commands(commands, data, default_port)
    add_events_parser(commands, data).set_defaults(run=cmd_events)
    add_bench_parser(commands).set_defaults(run=cmd_bench)
    add_deploy_parser(commands).set_defaults(run=cmd_deploy)
    return parser


def main(argv: list[str] | None = None) -> None:
    given = sys.argv[1:] if argv is None else argv
    if given and given[0] in _RUNTIME:
        runtime.main(given)
        return
    args = build_parser().parse_args(given)
    args.run(args)


if __name__ == "__main__":
    main()
