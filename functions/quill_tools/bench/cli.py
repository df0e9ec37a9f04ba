"""``quill bench``: run a benchmark and write its JSON and Markdown report."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["SUITES", "add_parser", "run"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    bench = commands.add_parser("bench", help="benchmarks (results under bench-results/)")
    bench.add_argument(
        "suite",
        nargs="?",
        default="all",
        choices=[*SUITES, "versus", "all"],
        help="coldstart: each target against functions-framework and Starlette baselines; "
        "apptime: microseconds per request inside the app, cached reads beside the floor's, in-process; "
        "warm: requests/s and latency per route at concurrency 1/32/128 beside the same baselines; "
        "mixed: 100 and 500 virtual users with think time; "
        "scale: list/filter/feed/search at 10k/100k/1M articles with EXPLAIN; "
        "events: local broker throughput and outbox latency; "
        "versus: each route beside another RealWorld backend (--against URL), in alternating slices; "
        "all (the default): every suite but versus, then the targets met or missed",
    )
    bench.add_argument("--quick", action="store_true", help="a small run for smoke tests (timings not meaningful)")
    bench.add_argument("--out", default="bench-results", help="folder for the JSON and Markdown reports")
    bench.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a server where the benchmark may create and drop its own database",
    )
    bench.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    bench.add_argument(
        "--against",
        metavar="URL",
        help="versus: the base URL of another RealWorld backend, running; it is seeded with new accounts",
    )
    bench.add_argument("--against-name", default="other", help="versus: what to call it in the report")
    return bench  # type: ignore[no-any-return]


def _coldstart(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import coldstart

    if args.quick:
        return coldstart.run(args.postgres, args.redis, runs=2, targets=["posts"])
    return coldstart.run(args.postgres, args.redis)


def _apptime(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import apptime

    if args.quick:
        return apptime.run(args.postgres, args.redis, passes=1, rounds=2, calls=200)
    return apptime.run(args.postgres, args.redis)


def _warm(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import warm

    if args.quick:
        return warm.run(
            args.postgres,
            args.redis,
            concurrencies=(1, 8),
            seconds=1,
            routes=("article", "list", "list_signed_in"),
            writes=("create",),
            pair_slices=2,
            pair_seconds=1,
        )
    return warm.run(args.postgres, args.redis)


def _mixed(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import mixed

    if args.quick:
        return mixed.run(args.postgres, args.redis, users=(20,), seconds=3)
    return mixed.run(args.postgres, args.redis)


def _scale(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import scale

    if args.quick:
        return scale.run(args.postgres, args.redis, scales=(2_000, 10_000), seconds=1, concurrency=8)
    return scale.run(args.postgres, args.redis)


def _events(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import events

    sizes = {"events": 100, "concurrency": 8, "articles": 20} if args.quick else {}
    return events.run(args.postgres, args.redis, **sizes)


def _versus(args: argparse.Namespace) -> dict[str, Any]:
    from quill_tools.bench import versus

    if not args.against:
        raise SystemExit("quill bench versus needs --against URL: another RealWorld backend, running")
    if args.quick:
        return versus.run(
            args.postgres,
            args.redis,
            against=args.against,
            name=args.against_name,
            users=4,
            articles_per_user=2,
            routes=("list", "user", "create"),
            slices=2,
            seconds=1,
        )
    return versus.run(args.postgres, args.redis, against=args.against, name=args.against_name)


# The suites ``all`` runs; ``versus`` needs another server and runs only when asked for.
SUITES: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "coldstart": _coldstart,
    "apptime": _apptime,
    "warm": _warm,
    "mixed": _mixed,
    "scale": _scale,
    "events": _events,
}


def _write(out: Path, name: str, result: dict[str, Any], report: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    (out / f"{name}.md").write_text(report, encoding="utf-8")
    print(report, flush=True)


def run(args: argparse.Namespace) -> None:
    try:
        import psutil  # noqa: F401 - only checks the bench extra is installed
    except ImportError:
        raise SystemExit("quill bench needs its extra: pip install -e '.[bench]'") from None
    from quill_tools.bench.report import markdown, targets

    out = Path(args.out)
    if args.against and args.suite != "versus":
        raise SystemExit("--against is for quill bench versus")
    runners = {**SUITES, "versus": _versus}
    chosen = list(SUITES) if args.suite == "all" else [args.suite]
    results: dict[str, dict[str, Any]] = {}
    for suite in chosen:
        result = runners[suite](args)
        result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
        against = f" --against {args.against} --against-name {args.against_name}" if suite == "versus" else ""
        result["command"] = f"quill bench {suite}{against}{' --quick' if args.quick else ''}"
        _write(out, suite, result, markdown(suite, result))
        results[suite] = result
    if args.suite == "all":
        checks = targets(results)
        lines = [
            "# quill bench: targets",
            "",
            "A --quick run is a smoke test: its figures are not meant to meet the targets." if args.quick else "",
            "",
            "| target | measured | met |",
            "|---|---|---|",
            *(f"| {row['target']} | {row['measured']} | {'yes' if row['met'] else 'NO'} |" for row in checks),
        ]
        _write(out, "targets", {"quick": args.quick, "targets": checks}, "\n".join(lines) + "\n")
