"""A consumer crashing on one event in the middle of a batch: the others are delivered,
the bad one is retried per the delivery spec, dead-lettered, and delivered on replay."""

from __future__ import annotations

import asyncio
import uuid

from cloudevents.http import CloudEvent

from quill.settings import Settings
from quill_tools.broker.config import BrokerConfig, Delivery, TriggerConfig
from quill_tools.broker.local import LocalBroker
from tests.event.conftest import Receiver


async def test_a_crash_mid_batch_is_retried_dead_lettered_and_replayable(
    receiver: Receiver, settings: Settings
) -> None:
    delivery = Delivery(retry=3, backoff_policy="linear", backoff_delay=0.05, timeout=1.0, dead_letter_service="dls")
    broker = LocalBroker(
        BrokerConfig("quill", "default", delivery, [TriggerConfig("t", "consumer")]), lambda n: receiver.url(f"/{n}")
    )
    batch = [
        CloudEvent({"type": "io.quill.article.created.v1", "source": "/t", "id": str(uuid.uuid4())}, {"n": n})
        for n in range(10)
    ]
    poison = batch[5]["id"]
    receiver.failing_ids.add(poison)
    stop = asyncio.Event()
    task = asyncio.create_task(broker.run(stop))

    for event in batch:
        await broker.ingest(event)
    parked = (await receiver.wait_for(1, "/dls"))[0].event
    delivered = {item.event["id"] for item in receiver.on("/consumer") if item.event["id"] != poison}
    attempts = [item for item in receiver.on("/consumer") if item.event["id"] == poison]

    assert delivered == {event["id"] for event in batch} - {poison}
    assert len(attempts) == delivery.retry + 1
    assert parked["id"] == poison
    assert parked["knativeerrorcode"] == "500"

    receiver.failing_ids.clear()  # the consumer is fixed; a person replays the dead letter
    replay = CloudEvent(
        {key: value for key, value in parked.get_attributes().items() if not key.startswith("knativeerror")},
        parked.data,
    )
    await broker.ingest(replay)
    await receiver.wait_for(delivery.retry + 2, "/consumer")
    stop.set()
    await task
    assert receiver.on("/consumer")[-1].event["id"] == poison
