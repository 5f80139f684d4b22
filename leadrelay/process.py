"""Process plumbing shared by ``leadrelay run`` and ``leadrelay up``: signals, logging, HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from leadrelay.runtime.log_redaction import install_log_redaction

T = TypeVar("T")

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str = "INFO") -> None:
    """Readable one-line logs on stderr, never an email; aiokafka's chatter kept to warnings."""
    install_log_redaction()
    logging.basicConfig(level=level, format=LOG_FORMAT)
    logging.getLogger("aiokafka").setLevel(logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def run_server(main: Coroutine[Any, Any, T]) -> T:
    """Run a serving process's ``main`` on uvloop where it is installed (not on Windows).

    uvicorn picks uvloop only when it creates the loop itself; our processes create it here, so
    this is where it is chosen. Its libuv loop makes each request's socket work and callbacks
    cheaper, which is most of an HTTP endpoint's overhead besides the application's own work.
    """
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


def freeze_startup_heap() -> None:
    """Collect the garbage of starting up, then exempt what survived from later collections.

    A serving process keeps everything it built while starting (modules, schemas, models, the
    app) until it exits: about 170,000 objects in ``leadrelay up``. CPython's oldest generation
    walks all of them on each of its collections, which in ``leadrelay up`` at 50 forms/s took
    up to 60 ms every few seconds, a pause every request and consumer batch waited through.
    Frozen (``gc.freeze``), they are never walked again; the garbage among them is collected
    first, so none of it is kept for good. Call it once, when the process is ready to serve.
    """
    gc.collect()
    gc.freeze()


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (orchestrators) and SIGINT (Ctrl-C) set ``stop``: every loop finishes cleanly."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)


class _QuietSignalsServer(uvicorn.Server):
    """Uvicorn without its own signal handling: the process's stop event owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def serve_http(
    app: FastAPI, host: str, port: int, stop: asyncio.Event, started: asyncio.Event | None = None
) -> None:
    """Serve ``app`` until ``stop`` is set; ``started`` is set once the socket listens."""
    server = _QuietSignalsServer(
        uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    if started is not None:
        started.set()
    waiting = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, waiting}, return_when=asyncio.FIRST_COMPLETED)
    server.should_exit = True
    waiting.cancel()
    await serving
