"""Benchmark results as Markdown, and the issue's speed targets checked against them."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from quill_tools.bench.baselines import COLD_START_NAMES
from quill_tools.bench.warm import FLOOR_JUDGED, PAIRS

__all__ = ["markdown", "targets"]


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
        "| route | concurrency | req/s | x floor | p50 ms | p95 ms | p99 ms | errors | CPU stolen % |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(f"({name})", cells) for name, cells in result["baselines"].items()]
    rows += list(result["routes"].items()) + list(result.get("single_function", {}).items())
    for route, cells in rows:
        for concurrency, cell in cells.items():
            ratio = f"{cell['vs_floor']:.2f}" if "vs_floor" in cell else ""
            lines.append(
                f"| {route} | {concurrency} | {cell['requests_per_second']:.0f} | {ratio} | {cell['p50_ms']:.1f} "
                f"| {cell['p95_ms']:.1f} | {cell['p99_ms']:.1f} | {cell['errors']} | {_stolen(cell)} |"
            )
    for key, what in (("pairs", "the anonymous read it is judged against"), ("over_floor", "the floor")):
        if pairs := result.get(key):
            lines += ["", *_pairs_lines(pairs, what)]
    if writes := result.get("writes"):
        lines += [
            "",
            f"Writes at concurrency {writes['concurrency']}: through the bundle under `quill dev` (its server storing"
            " each event, its worker process delivering them to the consumers) and through `posts` alone"
            " (`K_SINK` a sink taking every event);"
            " write rate limit off, unique titles.",
            "",
            "| write | bundle req/s | bundle p99 ms | bundle drained s | own function req/s "
            "| own function p99 ms | own drained s | own / bundle | errors |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for route, pair in writes["routes"].items():
            bundle, own = pair["bundle"], pair["own_function"]
            lines.append(
                f"| {route} | {bundle['requests_per_second']:.0f} | {bundle['p99_ms']:.1f} "
                f"| {bundle.get('drained_seconds', float('nan')):.1f} | {own['requests_per_second']:.0f} "
                f"| {own['p99_ms']:.1f} | {own.get('drained_seconds', float('nan')):.1f} "
                f"| {pair['own_over_bundle']:.2f} | {bundle['errors'] + own['errors']} |"
            )
        left = writes["events_undelivered"]
        lines += [
            "",
            f"Events still undelivered after the writes settled: bundle {left['bundle']} (to the broker"
            f" and on to every subscriber), own function {left['own_function']}. Each cell starts once the"
            " previous one's events are delivered; 'drained s' is how long that took after the cell.",
        ]
    return lines


def _stolen(cell: dict[str, Any]) -> str:
    return f"{cell['steal_pct']:.1f}" if "steal_pct" in cell else "-"


def _pairs_lines(pairs: dict[str, Any], what: str) -> list[str]:
    some = next(iter(pairs.values()))
    lines = [
        f"Each read beside {what} (c={some['concurrency']}), in {len(some['slice_ratios'])} alternating"
        f" slices of {some['seconds_per_slice']:.0f} s each (ABBA order), so the two ran on the same machine:",
        "",
        "| route | over | req/s | over req/s | ratio | each slice | CPU stolen % |",
        "|---|---|---|---|---|---|---|",
    ]
    for route, pair in pairs.items():
        each = ", ".join(f"{ratio:.2f}" for ratio in pair["slice_ratios"])
        lines.append(
            f"| {route} | {pair['over']} | {pair['requests_per_second']:.0f} | {pair['over_requests_per_second']:.0f} "
            f"| {pair['ratio']:.2f} | {each} | {pair['steal_pct']:.1f} |"
        )
    return lines


def _events_lines(result: dict[str, Any]) -> list[str]:
    broker, outbox = result["broker"], result["outbox"]
    latency, commit = broker["accept_to_delivered_ms"], outbox["commit_to_consumer_ms"]
    back_to_back = outbox["back_to_back_commit_to_consumer_ms"]
    return [
        "| measure | value |",
        "|---|---|",
        f"| import events sent (concurrency) | {broker['events']} ({broker['concurrency']}) |",
        f"| accepted by the ingress, events/s | {broker['accepted_per_second']:.0f} |",
        f"| delivered and handled by `importer`, events/s | {broker['delivered_per_second']:.0f} |",
        f"| accept → delivered under that burst, median / p99 ms | {latency['median']:.0f} / {latency['p99']:.0f} |",
        "| outbox commit → `search` handled, idle broker, each create alone, median / p99 ms "
        f"| {commit['median']:.1f} / {commit['p99']:.1f} |",
        f"| the same, {outbox['articles']} creates back to back (deliveries wait for the API's lull), median / p99 ms "
        f"| {back_to_back['median']:.1f} / {back_to_back['p99']:.1f} |",
    ]


def _mixed_lines(result: dict[str, Any]) -> list[str]:
    actions = ", ".join(f"{name} {weight}" for name, weight in result["actions"].items())
    lines = [
        f"{result['seconds']} s per run; client: {result['client']}; think time 0.5-1.5 s; weights: {actions}.",
        "",
        "| virtual users | req/s | p50 ms | p95 ms | p99 ms | max ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    share = result.get("signed_in_share", 0.0)
    for key, label in (("runs", ""), ("signed_in_runs", f", {share:.0%} signed in")):
        for users, cell in result.get(key, {}).items():
            lines.append(
                f"| {users}{label} | {cell['requests_per_second']:.0f} | {cell['p50_ms']:.1f} | {cell['p95_ms']:.1f} "
                f"| {cell['p99_ms']:.1f} | {cell['max_ms']:.1f} | {cell['errors']} |"
            )
    return lines


def _scale_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        f"Concurrency {result['concurrency']}, {result['seconds_per_cell']} s per cell, client: {result['client']}; "
        f"tag `{result['tag']}`, search term `{result['term']}`. DB ms: EXPLAIN ANALYZE execution of page + count.",
        "",
        "| articles | query | matches | req/s | p50 ms | p95 ms | p99 ms | errors | DB ms | scans articles | indexes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for articles, scale in result["scales"].items():
        for name, cell in scale["queries"].items():
            db, scans, indexes = "-", "-", "near cache"
            if explain := cell.get("explain"):
                db = f"{explain['page']['execution_ms'] + explain['count']['execution_ms']:.2f}"
                scans = "yes" if explain["page"]["scans_articles"] or explain["count"]["scans_articles"] else "no"
                indexes = ", ".join(sorted(set(explain["page"]["indexes"]) | set(explain["count"]["indexes"])))
            lines.append(
                f"| {articles} | {name} | {cell['matches']} | {cell['requests_per_second']:.0f} "
                f"| {cell['p50_ms']:.1f} | {cell['p95_ms']:.1f} | {cell['p99_ms']:.1f} | {cell['errors']} "
                f"| {db} | {scans} | {indexes} |"
            )
    growth = ", ".join(f"{name} {ratio:.2f}x" for name, ratio in result["p95_growth"].items())
    lines += ["", f"p95 at the largest scale over the smallest: {growth}."]
    seeding = ", ".join(f"{n}: {sum(scale['seeding_s'].values()):.0f} s" for n, scale in result["scales"].items())
    lines += [f"Seeding (COPY and set-based inserts, growing): {seeding}."]
    return lines


def _apptime_lines(result: dict[str, Any]) -> list[str]:
    lines = [
        f"Each case's ASGI app called in a loop in a fresh interpreter; interleaved passes: {result['passes']}, each of"
        f" {result['rounds']} rounds x {result['calls_per_round']} calls; a pass reports its median round.",
        "",
        "| case | best us per request | x floor | each pass us |",
        "|---|---|---|---|",
    ]
    for name, case in result["cases"].items():
        passes = ", ".join(f"{value:.1f}" for value in case["pass_medians_us"])
        lines.append(f"| {name} | {case['best_us']:.1f} | {case['x_floor']:.2f} | {passes} |")
    return lines


def _versus_lines(result: dict[str, Any]) -> list[str]:
    other, routes = result["against"]["name"], result["routes"]
    some = next(iter(routes.values()))
    seeded = result["seed"]
    lines = [
        f"Quill (`quill serve bundle`, events to a sink) beside {other} ({result['against']['url']}), both seeded"
        f" through the API with {seeded['users']} accounts of {seeded['articles_per_user']} articles, each"
        f" following {seeded['follows']}; c={some['concurrency']}, {len(some['slice_ratios'])} alternating slices"
        f" of {some['seconds_per_slice']:.0f} s a side (ABBA); client: {result['client']}. Served/s counts"
        " successful answers only; p99 is the median of the slices' (each slice opens its connections anew).",
        "",
        f"| route | kind | Quill served/s | {other} served/s | ratio | Quill p99 ms | {other} p99 ms "
        f"| Quill errors | {other} errors | CPU stolen % |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for route, pair in routes.items():
        p99 = [statistics.median(cell["p99_ms"] for cell in pair["slices"][side]) for side in ("route", "over")]
        ratio = "-" if pair["served_ratio"] is None else f"{pair['served_ratio']:.2f}"
        lines.append(
            f"| {route} | {pair['kind']} | {pair['served_per_second']:.0f} | {pair['over_served_per_second']:.0f} "
            f"| {ratio} | {p99[0]:.1f} | {p99[1]:.1f} | {pair['errors']} | {pair['over_errors']} "
            f"| {pair['steal_pct']:.1f} |"
        )
    judged = {route: _served_ratio(pair) for route, pair in routes.items() if pair["kind"] != "unjudged"}
    behind = [route for route, ratio in judged.items() if ratio <= 1]
    short = [f"{route} {ratio:.2f}x" for route, ratio in judged.items() if ratio < 3]
    ahead = "yes" if not behind else "NO, behind on " + ", ".join(behind)
    lines += [
        "",
        f"Ahead of {other} on every judged route (all but login): {ahead}.",
        f"At 3x or more on reads and writes (the aim): {'yes' if not short else 'NO: ' + ', '.join(short)}.",
    ]
    return lines


def _served_ratio(pair: dict[str, Any]) -> float:
    """Quill's served answers over the other's; the other serving nothing is ahead (and
    past 3x) only if Quill served something."""
    if pair["served_ratio"] is not None:
        return float(pair["served_ratio"])
    return float("inf") if pair["served_per_second"] > 0 else 0.0


_LINES = {
    "coldstart": _coldstart_lines,
    "apptime": _apptime_lines,
    "warm": _warm_lines,
    "mixed": _mixed_lines,
    "scale": _scale_lines,
    "events": _events_lines,
    "versus": _versus_lines,
}


def markdown(suite: str, result: dict[str, Any]) -> str:
    lines = [f"# quill bench {suite}", "", f"Run at {result['at']} (`{result['command']}`).", ""]
    return "\n".join(lines + _LINES[suite](result)) + "\n"


def _errors(value: Any) -> int:
    """Every error count anywhere in a result."""
    if isinstance(value, dict):
        return sum(_errors(v) if k != "errors" else int(v) for k, v in value.items() if k != "error_samples")
    if isinstance(value, list):
        return sum(_errors(v) for v in value)
    return 0


def _warm_targets(warm: dict[str, Any], check: Callable[[str, str, bool], None]) -> None:
    """Issue 16's: writes, and signed-in reads against their anonymous counterparts."""
    if writes := warm.get("writes"):
        undelivered = sum(writes["events_undelivered"].values())
        for route, pair in writes["routes"].items():
            own = pair["own_function"]
            check(
                f"{route} through its own function at c=32 >= 1,000 req/s, every event delivered",
                f"{own['requests_per_second']:.0f} req/s, {undelivered} events undelivered",
                own["requests_per_second"] >= 1000 and undelivered == 0,
            )
        if create := writes["routes"].get("create"):
            check(
                "create through the bundle (quill dev) within 1.5x its own function",
                f"own / bundle {create['own_over_bundle']:.2f}x",
                create["own_over_bundle"] <= 1.5,
            )
    routes, pairs = warm["routes"], warm.get("pairs", {})
    for signed_in, anonymous in PAIRS:
        cell, base = routes.get(signed_in, {}).get("32"), routes.get(anonymous, {}).get("32")
        if not (cell and base):
            continue
        own = cell["requests_per_second"] / base["requests_per_second"] if base["requests_per_second"] else 0.0
        ratio, measured = _judged(own, pairs.get(signed_in), f"{anonymous}'s")
        check(
            f"{signed_in} at c=32 (bundle): >= 0.8x {anonymous} (anonymous) req/s, p99 < 25 ms",
            f"{measured}, p99 {cell['p99_ms']:.1f} ms",
            ratio >= 0.8 and cell["p99_ms"] < 25,
        )


def _judged(own: float, pair: dict[str, Any] | None, over: str) -> tuple[float, str]:
    """The ratio a target judges and how the report says it: from the alternating slices
    when the run measured them (the same machine under both), the cells' own beside it."""
    if pair is None:
        return own, f"{own:.2f}x"
    return pair["ratio"], f"{pair['ratio']:.2f}x in alternating slices (its own cell over {over}: {own:.2f}x)"


def _over(starts: dict[str, dict[str, Any]], key: str, base: float) -> tuple[str, float, float]:
    """Each start's ``key`` over a baseline's: the worst start, its ratio, and the median ratio."""
    ratios = {name: row[key] / base for name, row in starts.items()}
    worst = max(ratios, key=ratios.__getitem__)
    return worst, ratios[worst], statistics.median(ratios.values())


def targets(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """The issue's targets, each with what was measured and whether it was met."""
    rows: list[dict[str, Any]] = []

    def check(target: str, measured: str, met: bool) -> None:
        rows.append({"target": target, "measured": measured, "met": met})

    if cold := results.get("coldstart"):
        quill = {k: v for k, v in cold["targets"].items() if k not in COLD_START_NAMES}
        worst = max(quill, key=lambda k: quill[k]["first_route_vs_floor"])
        ratio = quill[worst]["first_route_vs_floor"]
        measured = f"worst {worst} {ratio:.2f}x"
        if clients := cold["targets"].get("clients"):
            measured += f" (the client libraries alone: {clients['first_route_vs_floor']:.2f}x)"
        check("cold start to first real 200 <= 1.3x floor", measured, ratio <= 1.3)
        if clients:
            # Issue 16's frame: what Quill adds to the libraries no function can start without.
            base = clients["first_route_vs_floor"]
            heaviest, share, median = _over(quill, "first_route_vs_floor", base)
            check(
                "cold start: Quill's own share over the client libraries (first real 200 / clients) <= 1.05x",
                f"worst {heaviest} {share:.2f}x, median {median:.2f}x (clients {base:.2f}x the floor)"
                + (
                    "; counts the collector off during quill serve's start"
                    if "clients_gc_off" in cold["targets"]
                    else ""
                ),
                share <= 1.05,
            )
        if quiet := cold["targets"].get("clients_gc_off"):
            # Quill's code alone: what the collector's setting saves on the libraries left out.
            slowest, alone, median = _over(quill, "first_route_ms", quiet["first_route_ms"])
            check(
                "cold start: Quill's code alone over the client libraries started as quill serve starts"
                " (first real 200 / clients_gc_off) <= 1.05x",
                f"worst {slowest} {alone:.2f}x, median {median:.2f}x",
                alone <= 1.05,
            )
        rss = max(row["rss_mib"] for row in quill.values())
        check("RSS after first request < 90 MiB", f"max {rss:.0f} MiB", rss < 90)
    if warm := results.get("warm"):
        for route in FLOOR_JUDGED:
            if cell := warm["routes"].get(route, {}).get("32"):
                ratio, measured = _judged(cell["vs_floor"], warm.get("over_floor", {}).get(route), "the floor's")
                check(
                    f"{route} at c=32: >= 0.6x floor req/s, p99 < 25 ms",
                    f"{measured}, p99 {cell['p99_ms']:.1f} ms",
                    ratio >= 0.6 and cell["p99_ms"] < 25,
                )
        _warm_targets(warm, check)
    if scale := results.get("scale"):
        queries = scale["scales"].get("100000", {}).get("queries", {})
        for name, label in (
            ("list_served", "anonymous, as served"),
            ("list", "anonymous, near cache off, builds shared"),
            ("list_signed_in", "signed in"),
        ):
            cell = queries.get(name)
            if cell and scale["concurrency"] == 32:
                p99 = cell["p99_ms"]
                check(f"list limit=20 at c=32, 100k articles ({label}): p99 < 40 ms", f"p99 {p99:.1f} ms", p99 < 40)
        for name, ratio in scale["p95_growth"].items():
            check(f"{name}: p95 at the largest scale <= 1.5x the smallest", f"{ratio:.2f}x", ratio <= 1.5)
    if mixed := results.get("mixed"):
        for key, label in (("runs", ""), ("signed_in_runs", f", {mixed.get('signed_in_share', 0):.0%} signed in")):
            if cell := mixed.get(key, {}).get("500"):
                check(
                    f"mixed, 500 virtual users{label}: p95 < 15 ms, zero errors",
                    f"p95 {cell['p95_ms']:.1f} ms, {cell['errors']} errors",
                    cell["p95_ms"] < 15 and cell["errors"] == 0,
                )
    total = _errors(results)
    check("zero errors in every run", f"{total} errors", total == 0)
    return rows
