"""``quill dev``'s second process: the broker's dispatcher, the outbox relay and the
event functions the broker delivers to.

In the cluster the functions that serve requests and the ones that consume events are
separate Services. ``quill dev`` used to run both in one process, so one core: every
delivery (a ``search`` reindex per create) was taken from the requests' time, and a
create cost about twice what it costs its own function. Here they keep their own
process, their own connections and a lower CPU priority (``NICENESS``): the server
answers a burst of writes first, the deliveries follow. The server stores each event
(its ingress and the outbox's in-process send) and PostgreSQL's NOTIFY wakes this
process at once; what it misses, its poll finds.

Niceness alone did not keep the deliveries off the requests' time: with the worker at nice
10 or 19 (and its PostgreSQL backends reniced too) a burst of creates ran at ~60% of the
rate it reached with the worker stopped. So the worker also waits while the API is
serving (``ApiActivity``), up to ``LONGEST_YIELD`` seconds, and then delivers the backlog.

It stops on SIGTERM (the server stops it as it shuts down), ignores SIGINT (a Ctrl-C
reaches the whole process group; the server stops it in order), and stops by itself
if the server is gone. The server starts it again if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import multiprocessing
import os
import signal
import time
from collections.abc import Iterator
from multiprocessing.process import BaseProcess

from quill import events
from quill.domain import outbox
from quill.observability import configure_logging, get_logger
from quill.serving import aclose_all
from quill.settings import Settings, use_settings
from quill_tools.broker import config as broker_config
from quill_tools.broker.local import LocalBroker
from quill_tools.localfunctions import LocalFunctions

__all__ = ["LONGEST_YIELD", "NICENESS", "RELAY_SECONDS", "ApiActivity", "run"]

NICENESS = 10
RELAY_SECONDS = 5.0
# A write burst's events wait at most this long for the burst to pause; then they are
# delivered, requests or not. Search in ``quill dev`` lags a burst by as much.
LONGEST_YIELD = 10.0
# The API counts as serving while a request is in flight, and this long after the last:
# a few concurrent clients' requests come closer together; a person's do not.
_QUIET_SECONDS = 0.002
_STOP_WAIT = 10.0
_RESTART_AFTER = 1.0

_log = get_logger("quill.dev")


class ApiActivity:
    """How many requests the server's API has in flight, and when it last finished one,
    for the worker to read: shared memory that one process writes and the other reads,
    with no lock. A count, not only a time: a server kept off the CPU for a few
    milliseconds in a burst marks nothing meanwhile, and would look quiet."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        self._in_flight = context.RawValue(ctypes.c_long, 0)
        self._finished_at = context.RawValue(ctypes.c_double, float("-inf"))

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        self._in_flight.value += 1  # only the server's event loop writes: no race
        try:
            yield
        finally:
            self._in_flight.value -= 1
            self._finished_at.value = time.monotonic()  # CLOCK_MONOTONIC: one clock for every process

    def serving(self) -> bool:
        return self._in_flight.value > 0 or time.monotonic() - self._finished_at.value < _QUIET_SECONDS


async def run(
    settings: Settings,
    base_url: str,
    stopping: asyncio.Event,
    activity: ApiActivity,
    *,
    relay_seconds: float = RELAY_SECONDS,
) -> None:
    """The worker, for as long as ``stopping`` is not set; ``base_url`` is the server's,
    where its functions are named; ``activity``, its API's. A worker that dies is started
    again a second later: the deliveries it had leased are retried when their leases run out."""
    while not stopping.is_set():
        process = multiprocessing.get_context("spawn").Process(
            target=_main, args=(settings, base_url, relay_seconds, os.getpid(), activity), name="quill-dev-worker"
        )
        process.start()
        exited = asyncio.ensure_future(_exit_of(process))
        stopped = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({exited, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if stopping.is_set():
            process.terminate()  # by its PID: it finishes the deliveries under way
            try:
                await asyncio.wait_for(asyncio.shield(exited), _STOP_WAIT)
            except TimeoutError:
                process.kill()
                await exited
            return
        _log.error("dev_worker_exited", exit_code=process.exitcode)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=_RESTART_AFTER)


async def _exit_of(process: BaseProcess) -> None:
    """Return once the process has ended (and reap it): its sentinel becomes readable
    then, so the event loop watches it, with no thread parked in ``join``."""
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(process.sentinel, readable)
    try:
        await ended
    finally:
        loop.remove_reader(process.sentinel)
    process.join()  # it has ended: this only collects its exit status


def _main(settings: Settings, base_url: str, relay_seconds: float, parent: int, activity: ApiActivity) -> None:
    from uvicorn.loops.auto import auto_loop_factory

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):  # not on every platform; then at the same priority
        os.nice(NICENESS)
    with use_settings(settings), asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        configure_logging()
        runner.run(_work(base_url, relay_seconds, parent, activity))  # on the event loop the server runs


async def _work(base_url: str, relay_seconds: float, parent: int, activity: ApiActivity) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    functions = LocalFunctions(base_url)
    broker = LocalBroker(
        broker_config.load(),
        functions.url_of,
        functions.serving,
        yields_to=activity.serving,
        longest_yield=LONGEST_YIELD,
    )
    # Events this process's own functions emit (an import's articles) go to the broker in
    # process too.
    sink = base_url + broker.path
    events.serve_in_process(sink, broker.take)
    tasks = [
        asyncio.create_task(broker.run(stopping)),
        asyncio.create_task(broker.listen(stopping)),
        asyncio.create_task(_relay_forever(stopping, relay_seconds)),
    ]
    try:
        while not stopping.is_set() and os.getppid() == parent:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=1.0)
    finally:
        stopping.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        events.serve_in_process(sink, None)
        await aclose_all()


async def _relay_forever(stopping: asyncio.Event, seconds: float) -> None:
    """What a PingSource does in the cluster: send what the outbox still holds."""
    while not stopping.is_set():
        try:
            sent = await outbox.relay()
            if sent:
                _log.info("outbox_relayed", sent=sent)
        except Exception:
            _log.exception("outbox_relay_failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=seconds)
