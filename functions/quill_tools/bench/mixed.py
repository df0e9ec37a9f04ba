"""The mixed scenario: virtual users with 1 s think time, mostly reads, some writes.

Each connection of the load generator is one virtual user: it picks an action by the
weights of ``load.ACTIONS`` (the same as ``infra/loadtest/mixed.js`` for clusters),
sends it as one of the seeded accounts, then thinks 0.5-1.5 s. Latency never includes
the think time. Run at 100 and 500 users through the bundle.
"""

from __future__ import annotations

import asyncio
import random
from typing import Any

from quill_tools.bench.harness import migrated_scratch, start_quill
from quill_tools.bench.load import ACTIONS, request, seed
from quill_tools.bench.loadgen import Plan, Request, client_name, measure

__all__ = ["USERS", "plan", "run"]

USERS = (100, 500)
# Each action is spread over this many (me, other) account pairs.
_PAIRS = 12


def plan(accounts: list[dict[str, str]], think_ms: int = 1000) -> Plan:
    rng = random.Random(7)  # noqa: S311 - load shape, not security
    requests: list[Request] = []
    weights: list[int] = []
    for action, weight in ACTIONS:
        for pair in range(_PAIRS):
            me, other = rng.sample(accounts, 2)  # never follows oneself
            requests.append(request(action, me, other, flip=pair % 2 == 0))
            weights.append(weight)
    return Plan(tuple(requests), tuple(weights), think_ms)


def run(admin_url: str, redis_url: str, *, users: tuple[int, ...] = USERS, seconds: float = 30.0) -> dict[str, Any]:
    results: dict[str, Any] = {"seconds": seconds, "client": client_name(), "actions": dict(ACTIONS), "runs": {}}
    with migrated_scratch(admin_url, redis_url, "mixed") as scratch:
        env, folder = scratch.env, scratch.folder
        with start_quill(["serve", "bundle"], env, folder) as bundle:
            accounts = asyncio.run(seed(bundle.base_url, users=40, articles_per_user=3))
            scenario = plan(accounts)
            for count in users:
                results["runs"][str(count)] = measure(bundle.base_url, scenario, connections=count, seconds=seconds)
    return results
