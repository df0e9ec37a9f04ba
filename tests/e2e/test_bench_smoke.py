"""``quill bench <suite> --quick`` runs end to end (smoke tests: timings are not asserted)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from quill_tools.bench.harness import migrated_scratch, start_quill
from quill_tools.bench.load import seed
from tests.conftest import Servers
from tests.e2e.conftest import QUILL

pytestmark = pytest.mark.e2e


def _bench(suite: str, servers: Servers, out: Path, *args: str, **env: str) -> dict[str, Any]:
    result = subprocess.run(
        [
            QUILL,
            "bench",
            suite,
            "--quick",
            "--out",
            str(out),
            "--postgres",
            servers.admin_url,
            "--redis",
            servers.redis_url,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=out,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / f"{suite}.md").read_text().startswith(f"# quill bench {suite}")
    report: dict[str, Any] = json.loads((out / f"{suite}.json").read_text())
    return report


def test_the_events_benchmark_runs_and_writes_its_reports(servers: Servers, tmp_path: Path) -> None:
    report = _bench("events", servers, tmp_path)
    assert report["broker"]["imported"] == 100
    assert report["outbox"]["commit_to_consumer_ms"]["n"] == 20
    assert report["outbox"]["back_to_back_commit_to_consumer_ms"]["n"] == 20


def test_the_coldstart_benchmark_runs_and_reports_ratios(servers: Servers, tmp_path: Path) -> None:
    report = _bench("coldstart", servers, tmp_path)
    assert set(report["targets"]) == {"floor", "ceiling", "clients", "clients_gc_off", "posts"}
    assert report["targets"]["floor"]["ready_vs_floor"] == 1.0
    assert report["import_time_top10_posts"][0]["cumulative_ms"] > 0


def test_the_apptime_benchmark_measures_every_case_beside_the_floor(servers: Servers, tmp_path: Path) -> None:
    report = _bench("apptime", servers, tmp_path)
    assert set(report["cases"]) == {
        "floor",
        "liveness",
        "article",
        "list",
        "profile_anonymous",
        "list_signed_in",
        "feed",
        "user",
    }
    assert report["cases"]["floor"]["x_floor"] == 1.0
    assert all(case["best_us"] > 0 for case in report["cases"].values())


def test_the_warm_load_benchmark_runs_and_reports_ratios(servers: Servers, tmp_path: Path) -> None:
    report = _bench("warm", servers, tmp_path)
    assert set(report["baselines"]) == {"floor", "ceiling"}
    for cells in report["routes"].values():
        for cell in cells.values():
            assert cell["errors"] == 0
            assert cell["requests_per_second"] > 0
    assert set(report["single_function"]) == {"article (posts)", "list (posts)", "list_signed_in (posts)"}
    pair = report["pairs"]["list_signed_in"]  # beside the anonymous list, in alternating slices
    assert pair["over"] == "list"
    assert len(pair["slices"]["route"]) == len(pair["slices"]["over"]) == 2
    assert pair["ratio"] > 0
    assert all(0 <= cell["steal_pct"] <= 100 for cell in pair["slices"]["route"])
    assert report["over_floor"]["article"]["over"] == "floor"  # beside the floor's own server
    assert report["over_floor"]["article"]["over_requests_per_second"] > 0


def test_the_versus_benchmark_measures_quill_beside_another_realworld_server(servers: Servers, tmp_path: Path) -> None:
    """The other server here is a second Quill (the platform Quill replaces cannot run in
    CI): what is asserted is that both are seeded through the API and measured in turns."""
    with (
        migrated_scratch(servers.admin_url, servers.redis_url, "versusother") as scratch,
        start_quill(["serve", "bundle"], scratch.env, scratch.folder) as other,
    ):
        report = _bench("versus", servers, tmp_path, "--against", other.base_url, "--against-name", "second")
        with httpx.Client(base_url=other.base_url) as client:
            prefix = report["seed"]["prefix"]
            seeded = client.get(f"/api/profiles/{prefix}0")

    assert seeded.status_code == 200  # the other server got its own new accounts
    assert set(report["routes"]) == {"list", "user", "create"}
    for route, pair in report["routes"].items():
        assert pair["over"] == "second"
        assert pair["kind"] == ("write" if route == "create" else "read")
        assert len(pair["slices"]["route"]) == len(pair["slices"]["over"]) == 2
        assert pair["errors"] == pair["over_errors"] == 0, route
        assert pair["served_per_second"] > 0
        assert pair["over_served_per_second"] > 0
    assert "Ahead of second on every judged route" in (tmp_path / "versus.md").read_text()


def test_the_versus_benchmark_asks_for_the_other_server(servers: Servers, tmp_path: Path) -> None:
    result = subprocess.run(
        [QUILL, "bench", "versus", "--out", str(tmp_path)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "needs --against URL" in result.stderr
    assert not (tmp_path / "versus.json").exists()


@pytest.mark.parametrize("client", ["wrk", "python"])
def test_the_mixed_scenario_runs_without_errors(servers: Servers, tmp_path: Path, client: str) -> None:
    if client == "wrk" and not shutil.which("wrk"):
        pytest.skip("wrk is not installed (apt-get install wrk): the Python client case still runs")
    report = _bench("mixed", servers, tmp_path, QUILL_BENCH_CLIENT=client)
    assert report["client"] == client
    for key in ("runs", "signed_in_runs"):  # the original mix, then 70% of the users signed in
        run = report[key]["20"]
        assert run["errors"] == 0, run
        assert run["requests"] > 0


def test_the_scale_benchmark_seeds_measures_and_explains(servers: Servers, tmp_path: Path) -> None:
    report = _bench("scale", servers, tmp_path)
    queries = report["scales"]["10000"]["queries"]
    assert queries["list"]["matches"] == 10_000  # the seeder grew 2k to exactly 10k
    assert queries["list_served"]["matches"] == 10_000  # the near-cached bundle saw the growth too
    assert queries["feed"]["matches"] > 0
    for name, cell in queries.items():
        assert cell["errors"] == 0, name
        if name != "list_served":  # a page served from memory has no statement to explain
            assert not cell["explain"]["page"]["scans_articles"], cell["explain"]["page"]["plan"]


def test_the_seed_makes_each_account_follow_the_next_ones_so_feeds_have_pages(servers: Servers) -> None:
    """``warm``'s feed cell reads real pages: each account follows the next ``follows``."""
    with (
        migrated_scratch(servers.admin_url, servers.redis_url, "seedtest") as scratch,
        start_quill(["serve", "bundle"], scratch.env, scratch.folder) as bundle,
    ):
        accounts = asyncio.run(seed(bundle.base_url, users=3, articles_per_user=1, follows=2))
        feeds = [
            httpx.get(f"{bundle.base_url}/api/articles/feed", headers={"Authorization": f"Token {account['token']}"})
            for account in accounts
        ]

    authors = [sorted(article["author"]["username"] for article in feed.json()["articles"]) for feed in feeds]
    assert authors == [["user1", "user2"], ["user0", "user2"], ["user0", "user1"]]
    assert all(article["author"]["following"] for feed in feeds for article in feed.json()["articles"])
