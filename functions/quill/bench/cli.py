"""``quill bench``: run a benchmark and write its JSON and Markdown report."""

from __future__ import annotations

import argparse
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(commands: Any) -> argparse.ArgumentParser:
    bench = commands.add_parser("bench", help="benchmarks (results under bench-results/)")
    bench.add_argument(
        "suite",
        choices=["coldstart", "warm", "events"],
        help="coldstart: each target against functions-framework and Starlette baselines; "
        "warm: requests/s and latency per route at concurrency 1/32/128 beside the same baselines; "
        "events: local broker throughput and outbox latency",
    )
    bench.add_argument("--quick", action="store_true", help="a small run for smoke tests (timings not meaningful)")
    bench.add_argument("--out", default="bench-results", help="folder for the JSON and Markdown reports")
    bench.add_argument(
        "--postgres",
        default=os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"),
        help="a server where the benchmark may create and drop its own database",
    )
    bench.add_argument("--redis", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/6"))
    return bench  # type: ignore[no-any-return]


def _coldstart_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        f"Median of {result['runs']} starts each, interleaved; spreads are min-max.",
        "",
        "| target | to readiness 200 ms | x floor | to first route ms | x floor | RSS MiB |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in result["targets"].items():
        lines.append(
            f"| {name} | {row['ready_ms']:.0f} ({row['ready_ms_spread'][0]:.0f}-{row['ready_ms_spread'][1]:.0f}) "
            f"| {row['ready_vs_floor']:.2f} | {row['first_route_ms']:.0f} | {row['first_route_vs_floor']:.2f} "
            f"| {row['rss_mib']:.0f} |"
        )
    lines += ["", "Import time, `quill serve posts`, top 10 (cumulative ms):", ""]
    lines += [f"- {row['module']}: {row['cumulative_ms']:.1f}" for row in result["import_time_top10_posts"]]
    return lines


def _warm_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        f"{result['seconds_per_cell']} s per cell; client: {result['client']}"
        + (" (Python: near its own ceiling above ~1,000 req/s on 2 cores)" if result["client"] == "python" else "")
        + ". Baselines in parentheses; the rest through the bundle, then each route's own function.",
        "",
        "| route | concurrency | req/s | x floor | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = [(f"({name})", cells) for name, cells in result["baselines"].items()]
    rows += list(result["routes"].items()) + list(result.get("single_function", {}).items())
    for route, cells in rows:
        for concurrency, cell in cells.items():
            ratio = f"{cell['vs_floor']:.2f}" if "vs_floor" in cell else ""
            lines.append(
                f"| {route} | {concurrency} | {cell['requests_per_second']:.0f} | {ratio} | {cell['p50_ms']:.1f} "
                f"| {cell['p95_ms']:.1f} | {cell['p99_ms']:.1f} | {cell['errors']} |"
            )
    return lines


def _markdown(suite: str, result: dict[str, Any]) -> str:
    lines = [f"# quill bench {suite}", "", f"Run at {result['at']} (`{result['command']}`).", ""]
    if suite == "coldstart":
        return "\n".join(lines + _coldstart_lines(result)) + "\n"
    if suite == "warm":
        return "\n".join(lines + _warm_lines(result)) + "\n"
    broker, outbox = result["broker"], result["outbox"]
    latency, commit = broker["accept_to_delivered_ms"], outbox["commit_to_consumer_ms"]
    lines += [
        "| measure | value |",
        "|---|---|",
        f"| import events sent (concurrency) | {broker['events']} ({broker['concurrency']}) |",
        f"| accepted by the ingress, events/s | {broker['accepted_per_second']:.0f} |",
        f"| delivered and handled by `importer`, events/s | {broker['delivered_per_second']:.0f} |",
        f"| accept → delivered under that burst, median / p99 ms | {latency['median']:.0f} / {latency['p99']:.0f} |",
        "| outbox commit → `search` handled, idle broker, median / p99 ms "
        f"| {commit['median']:.1f} / {commit['p99']:.1f} |",
    ]
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> None:
    try:
        import psutil  # noqa: F401 - only checks the bench extra is installed
    except ImportError:
        raise SystemExit("quill bench needs its extra: pip install -e '.[bench]'") from None
    result: dict[str, Any]
    if args.suite == "coldstart":
        from quill.bench import coldstart

        if args.quick:
            result = coldstart.run(args.postgres, args.redis, runs=2, targets=["posts"])
        else:
            result = coldstart.run(args.postgres, args.redis)
    elif args.suite == "warm":
        from quill.bench import warm

        if args.quick:
            result = warm.run(args.postgres, args.redis, concurrencies=(1, 8), seconds=0.5, routes=("article", "list"))
        else:
            result = warm.run(args.postgres, args.redis)
    else:
        from quill.bench import events

        sizes = {"events": 100, "concurrency": 8, "articles": 20} if args.quick else {}
        result = events.run(args.postgres, args.redis, **sizes)
    result["at"] = datetime.now(UTC).isoformat(timespec="seconds")
    result["command"] = f"quill bench {args.suite}{' --quick' if args.quick else ''}"
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.suite}.json").write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    report = _markdown(args.suite, result)
    (out / f"{args.suite}.md").write_text(report, encoding="utf-8")
    print(report)
