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
from quill_tools.bench.load import ACTIONS, ANONYMOUS_ACTIONS, request, seed
from quill_tools.bench.loadgen import Plan, Request, client_name, measure

__all__ = ["USERS", "plan", "run"]

USERS = (100, 500)
# Each action is spread over this many (me, other) account pairs.
_PAIRS = 12


def plan(accounts: list[dict[str, str]], think_ms: int = 1000, *, signed_in_share: float | None = None) -> Plan:
    """The original mix, or with ``signed_in_share`` a population where that share of the users
    is signed in (a frontend's token on every request) and the rest are anonymous visitors.

    Each request of the plan is drawn independently, so the shares hold over the requests of
    the run rather than per connection: the same load on the server."""
    rng = random.Random(7)  # noqa: S311 - load shape, not security
    requests: list[Request] = []
    weights: list[int] = []

    def add(actions: tuple[tuple[str, int], ...], share: float, *, anonymous: bool, signed_in: bool) -> None:
        for action, weight in actions:
            for pair in range(_PAIRS):
                me, other = rng.sample(accounts, 2)  # never follows oneself
                requests.append(
                    request(action, None if anonymous else me, other, flip=pair % 2 == 0, signed_in=signed_in)
                )
                weights.append(round(weight * share * 100))

    if signed_in_share is None:
        add(ACTIONS, 1.0, anonymous=False, signed_in=False)
    else:
        # An anonymous visitor sends as many requests as a signed-in user, all of them reads.
        anonymous = (1 - signed_in_share) * sum(w for _, w in ACTIONS) / sum(w for _, w in ANONYMOUS_ACTIONS)
        add(ACTIONS, signed_in_share, anonymous=False, signed_in=True)
        add(ANONYMOUS_ACTIONS, anonymous, anonymous=True, signed_in=False)
    return Plan(tuple(requests), tuple(weights), think_ms)


SIGNED_IN_SHARE = 0.7


def run(admin_url: str, redis_url: str, *, users: tuple[int, ...] = USERS, seconds: float = 30.0) -> dict[str, Any]:
    """Each user count twice: the original mix (``runs``), then a signed-in majority
    (``signed_in_runs``: 70% of the users signed in, reading what a signed-in frontend reads)."""
    results: dict[str, Any] = {
        "seconds": seconds,
        "client": client_name(),
        "actions": dict(ACTIONS),
        "signed_in_share": SIGNED_IN_SHARE,
        "runs": {},
        "signed_in_runs": {},
    }
    with migrated_scratch(admin_url, redis_url, "mixed") as scratch:
        env, folder = scratch.env, scratch.folder
        with start_quill(["serve", "bundle"], env, folder) as bundle:
            accounts = asyncio.run(seed(bundle.base_url, users=40, articles_per_user=3))
            for key, scenario in (
                ("runs", plan(accounts)),
                ("signed_in_runs", plan(accounts, signed_in_share=SIGNED_IN_SHARE)),
            ):
                for count in users:
                    results[key][str(count)] = measure(bundle.base_url, scenario, connections=count, seconds=seconds)
    return results
