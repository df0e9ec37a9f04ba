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

It stops on SIGTERM (the server stops it as it shuts down), ignores SIGINT (a Ctrl-C
reaches the whole process group; the server stops it in order), and stops by itself
if the server is gone. The server starts it again if it dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import signal
from multiprocessing.process import BaseProcess

from quill import events
from quill.domain import outbox
from quill.observability import configure_logging, get_logger
from quill.serving import aclose_all
from quill.settings import Settings, use_settings
from quill_tools.broker import config as broker_config
from quill_tools.broker.local import LocalBroker
from quill_tools.localfunctions import LocalFunctions

__all__ = ["NICENESS", "RELAY_SECONDS", "run"]

NICENESS = 10
RELAY_SECONDS = 5.0
_STOP_WAIT = 10.0
_RESTART_AFTER = 1.0

_log = get_logger("quill.dev")


async def run(
    settings: Settings, base_url: str, stopping: asyncio.Event, *, relay_seconds: float = RELAY_SECONDS
) -> None:
    """The worker, for as long as ``stopping`` is not set; ``base_url`` is the server's,
    where its functions are named. A worker that dies is started again a second later:
    the deliveries it had leased are retried when their leases run out."""
    while not stopping.is_set():
        process = multiprocessing.get_context("spawn").Process(
            target=_main, args=(settings, base_url, relay_seconds, os.getpid()), name="quill-dev-worker"
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


def _main(settings: Settings, base_url: str, relay_seconds: float, parent: int) -> None:
    from uvicorn.loops.auto import auto_loop_factory

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(OSError, AttributeError):  # not on every platform; then at the same priority
        os.nice(NICENESS)
    with use_settings(settings), asyncio.Runner(loop_factory=auto_loop_factory()) as runner:
        configure_logging()
        runner.run(_work(base_url, relay_seconds, parent))  # on the event loop the server runs


async def _work(base_url: str, relay_seconds: float, parent: int) -> None:
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    functions = LocalFunctions(base_url)
    broker = LocalBroker(broker_config.load(), functions.url_of, functions.serving)
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
