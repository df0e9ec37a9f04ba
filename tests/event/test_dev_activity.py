"""``quill dev``'s server tells its worker when the API is serving, so deliveries wait."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing.queues import Queue

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from quill.settings import Settings
from quill_tools.devserver import DevServer
from quill_tools.devworker import ApiActivity


def test_the_api_is_serving_while_a_request_is_in_flight_and_just_after() -> None:
    activity = ApiActivity()
    assert not activity.serving()
    with activity.request():
        time.sleep(0.05)  # longer than the quiet time: in flight still counts
        assert activity.serving()
    time.sleep(0.05)
    assert not activity.serving()


def _report(activity: ApiActivity, answers: Queue[bool]) -> None:
    answers.put(activity.serving())


def test_the_worker_process_sees_what_the_server_process_marks() -> None:
    context = multiprocessing.get_context("spawn")  # as the worker is started
    activity = ApiActivity()
    answers: Queue[bool] = context.Queue()
    with activity.request():
        child = context.Process(target=_report, args=(activity, answers))
        child.start()
        assert answers.get(timeout=30) is True
        child.join(timeout=30)
    time.sleep(0.05)
    child = context.Process(target=_report, args=(activity, answers))
    child.start()
    assert answers.get(timeout=30) is False
    child.join(timeout=30)


async def test_the_dev_server_counts_api_requests_but_not_the_brokers_ingress(settings: Settings) -> None:
    """Seen from inside each request: the API's counts as in flight, the ingress's does not."""
    server = DevServer("http://127.0.0.1:9")
    seen: dict[str, bool] = {}

    async def api(scope: Scope, receive: Receive, send: Send) -> None:
        seen["api"] = server.activity.serving()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def ingress(request: Request) -> Response:
        seen["ingress"] = server.activity.serving()
        return Response(status_code=202)

    server.bundle = api  # what the gateway routes to
    server._ingress = ingress  # type: ignore[method-assign]  # the broker's ingress, stubbed to look from inside
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=server), base_url="http://dev") as client:
        assert (await client.post(server.broker.path, content=b"{}")).status_code == 202
        assert (await client.get("/api/articles")).status_code == 200
    assert seen == {"ingress": False, "api": True}
