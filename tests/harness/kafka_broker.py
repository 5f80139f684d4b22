"""A real single-node Apache Kafka 4.1.1 broker (KRaft, broker+controller) for integration tests.

The jars come from Maven Central through ``tests/harness/kafka/pom.xml`` and are cached, so only
Java 17 and Maven are needed: no container runtime. A :class:`KafkaBroker` can be stopped and
started again on the same port and data directory, which is how tests simulate a broker outage.

Command line::

    python -m tests.harness.kafka_broker --fetch-only   # resolve the jars (CI pre-warms the cache)
    python -m tests.harness.kafka_broker                # run a broker in the foreground
"""

from __future__ import annotations

import argparse
import atexit
import base64
import hashlib
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from types import FrameType, TracebackType

from tests.harness.common import (
    HarnessError,
    HarnessUnavailableError,
    cache_root,
    free_port,
    log_tail,
)

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
POM = Path(__file__).parent / "kafka" / "pom.xml"
_COMPLETE_MARKER = ".complete"

_METADATA_API_KEY = 3
_METADATA_VERSION = 1  # non-flexible, still supported by 4.x; v1 puts the broker list first
_CLIENT_ID = b"leadrelay-harness"

_LOG4J2_PROPERTIES = """\
status = warn
appender.out.type = Console
appender.out.name = STDOUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.out.ref = STDOUT
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


def lib_dir() -> Path:
    """The cached jar directory for :data:`KAFKA_VERSION`."""
    return cache_root() / f"kafka-{KAFKA_VERSION}" / "lib"


def resolve_jars() -> Path:
    """Copy the broker's jars into the cache once; later calls return at once.

    The marker records a hash of the pom, so editing the dependency list refetches. The copy goes
    to a scratch directory renamed into place, so an interrupted download never looks complete.
    """
    target = lib_dir()
    fingerprint = hashlib.sha256(POM.read_bytes()).hexdigest()
    marker = target / _COMPLETE_MARKER
    if marker.is_file() and marker.read_text().strip() == fingerprint:
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise HarnessUnavailableError("Maven (mvn) is not installed: it fetches the Kafka jars")
    scratch = Path(tempfile.mkdtemp(prefix="lib.partial-", dir=_ensure_dir(target.parent)))
    command = [
        mvn, "-B", "-q", "-f", str(POM), "dependency:copy-dependencies",
        f"-DoutputDirectory={scratch}", "-DincludeScope=runtime",
    ]  # fmt: skip
    log.info("fetching Kafka %s jars into %s", KAFKA_VERSION, target)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        shutil.rmtree(scratch, ignore_errors=True)
        raise HarnessError(f"mvn could not fetch the Kafka jars:\n{result.stdout}\n{result.stderr}")
    (scratch / _COMPLETE_MARKER).write_text(fingerprint)
    shutil.rmtree(target, ignore_errors=True)
    try:
        scratch.rename(target)
    except OSError:  # another process renamed its copy first (e.g. two sessions on a cold cache)
        shutil.rmtree(scratch, ignore_errors=True)
        if marker.read_text().strip() != fingerprint:
            raise
    return target


def _ensure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _java() -> str:
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    if candidate is not None and candidate.is_file():
        return str(candidate)
    found = shutil.which("java")
    if found is None:
        raise HarnessUnavailableError("Java 17+ is not installed: the Kafka broker needs it")
    return found


def random_cluster_id() -> str:
    """A Kafka ``Uuid`` string (22 url-safe base64 chars), never starting with '-' like Kafka's."""
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


def metadata_ready(host: str, port: int, timeout: float = 2.0) -> bool:
    """True when the broker answers a Metadata request listing at least one live broker.

    An open port is not enough: a KRaft broker lists itself only once it is registered with the
    controller and unfenced, i.e. able to lead partitions and take produce requests. A raw request
    keeps this synchronous, so it works whether or not the caller runs an event loop.
    """
    header = struct.pack(">hhih", _METADATA_API_KEY, _METADATA_VERSION, 1, len(_CLIENT_ID))
    request = header + _CLIENT_ID + struct.pack(">i", 0)  # an empty topic list: brokers only
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(struct.pack(">i", len(request)) + request)
            (size,) = struct.unpack(">i", _recv_exactly(sock, 4))
            payload = _recv_exactly(sock, size)
    except OSError:
        return False
    _correlation_id, broker_count = struct.unpack_from(">ii", payload)
    return bool(broker_count > 0)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        chunks.extend(chunk)
    return bytes(chunks)


class KafkaBroker:
    """One Kafka 4.1.1 process in KRaft combined mode on loopback ports chosen at construction.

    ``start()`` and ``stop()`` are idempotent and synchronous (they block for a few seconds); from
    async code call them through ``asyncio.to_thread`` if other tasks must keep running meanwhile.
    A restart reuses the port and the data directory, so topics and committed offsets survive.
    """

    def __init__(
        self,
        workdir: Path | None = None,
        *,
        start_timeout: float = 90.0,
        heap: str = "512m",
        stop_at_exit: bool = True,
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="leadrelay-kafka-"))
        self.port = free_port()
        self.controller_port = free_port()
        self.start_timeout = start_timeout
        self.heap = heap
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop_at_exit = stop_at_exit
        """False: the broker outlives this process (shared by pytest workers, the controller
        stops it)."""
        self._atexit_registered = False

    @property
    def bootstrap(self) -> str:
        """The ``bootstrap.servers`` string for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs."""
        return self._proc.pid if self.is_running and self._proc is not None else None

    @property
    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the broker (formatting storage on first use) and wait until it serves clients."""
        if self.is_running:
            return
        classpath = str(resolve_jars() / "*")
        java = _java()
        properties = self._write_config()
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage(java, classpath, properties)
        with self.log_path.open("ab") as log_file:
            self._proc = subprocess.Popen(
                [java, *self._jvm_options(), "-cp", classpath, "kafka.Kafka", str(properties)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        if self._stop_at_exit and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        self._await_ready()

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (a controlled shutdown), then SIGKILL after ``timeout`` seconds."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Kafka broker ignored SIGTERM for %ss; killing it", timeout)
            proc.kill()
            proc.wait()

    def close(self) -> None:
        """Stop the broker and delete its directory if this object created it."""
        self.stop()
        if self._owns_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def wait(self) -> int:
        """Block until the broker process exits; the foreground CLI uses it."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _jvm_options(self) -> list[str]:
        return [
            f"-Xmx{self.heap}",
            "-Xms128m",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-XX:+ExitOnOutOfMemoryError",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
        ]

    def _write_config(self) -> Path:
        (self.workdir / "log4j2.properties").write_text(_LOG4J2_PROPERTIES)
        path = self.workdir / "server.properties"
        lines = [f"{key}={value}" for key, value in self._settings().items()]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _settings(self) -> dict[str, str]:
        """KRaft combined mode, one node, every internal topic at replication factor 1."""
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir),
            "num.partitions": "3",
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "3",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.segment.bytes": str(16 * 1024 * 1024),
            "log.retention.hours": "2",
            "log.retention.check.interval.ms": "60000",
            "num.recovery.threads.per.data.dir": "1",
        }

    def _format_storage(self, java: str, classpath: str, properties: Path) -> None:
        command = [
            java, "-Xmx256m", f"-Dlog4j2.configurationFile={self.workdir / 'log4j2.properties'}",
            "-cp", classpath, "kafka.tools.StorageTool", "format", "--standalone",
            "--cluster-id", random_cluster_id(), "--config", str(properties),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        with self.log_path.open("a", encoding="utf-8") as log_file:
            log_file.write(result.stdout + result.stderr)
        if result.returncode != 0:
            raise HarnessError(f"kafka-storage format failed:\n{log_tail(self.log_path)}")

    def _await_ready(self) -> None:
        """Poll until the broker lists itself, failing fast (with the log) if the JVM exits."""
        assert self._proc is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if metadata_ready("127.0.0.1", self.port):
                return
            try:
                code = self._proc.wait(timeout=0.25)
            except subprocess.TimeoutExpired:
                continue
            self._proc = None
            raise HarnessError(
                f"Kafka exited with {code} while starting:\n{log_tail(self.log_path)}"
            )
        self.stop()
        raise HarnessError(
            f"Kafka not ready within {self.start_timeout}s:\n{log_tail(self.log_path)}"
        )


def main(argv: list[str] | None = None) -> int:
    """Fetch the jars, or run a broker in the foreground until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m tests.harness.kafka_broker")
    parser.add_argument("--fetch-only", action="store_true", help="only resolve and cache the jars")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.fetch_only:
        print(resolve_jars())
        return 0
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    broker = KafkaBroker()
    try:
        started = time.monotonic()
        broker.start()
        print(f"Kafka {KAFKA_VERSION} ready in {time.monotonic() - started:.1f}s")
        print(f"bootstrap: {broker.bootstrap}   log: {broker.log_path}", flush=True)
        return broker.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        broker.close()


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (and SIGINT, even if inherited as ignored) must still stop the JVM we started."""
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
