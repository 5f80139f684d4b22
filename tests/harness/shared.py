"""One Kafka broker and one PostgreSQL cluster for every pytest-xdist worker of a session.

The suite mostly waits (on the broker, the database, its own polls), so it runs more workers
than cores; a broker and a cluster per worker would spend more CPU starting JVMs than the extra
workers save. Tests already keep out of each other's way (unique topic prefixes, consumer groups
and scratch databases), so they can share the servers.

The first worker that needs a server starts it, under a file lock in a directory the controller
hands every worker, and writes down how to reach and how to stop it; the others read that note.
A server must outlive the worker that started it (that worker may run out of tests first), so it
is started without an exit hook and the controller stops every noted server when the session
ends (:func:`stop_noted`).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path

from tests.harness.kafka_broker import KafkaBroker
from tests.harness.postgres import PostgresServer

Note = dict[str, str | int]
_KAFKA = "kafka"
_POSTGRES = "postgres"


def shared_kafka(root: Path) -> str:
    """``bootstrap.servers`` of the session's broker, started here if no worker has yet."""

    def start() -> Note:
        broker = KafkaBroker(stop_at_exit=False)
        broker.start()
        assert broker.pid is not None
        return {"bootstrap": broker.bootstrap, "pid": broker.pid, "workdir": str(broker.workdir)}

    return str(_noted(root, _KAFKA, start)["bootstrap"])


def shared_postgres(root: Path) -> str:
    """URL of the session's ``leadrelay_test`` database, its cluster started here if need be."""

    def start() -> Note:
        server = PostgresServer(stop_at_exit=False)
        server.start()
        return {"url": server.url, "workdir": str(server.workdir)}

    return str(_noted(root, _POSTGRES, start)["url"])


def _noted(root: Path, name: str, start: Callable[[], Note]) -> Note:
    """The note of server ``name``; the first caller (one at a time, by the lock) starts it.

    A start that fails writes no note, so every worker that needs the server tries and reports
    the failure itself (a missing prerequisite skips its tests, or fails them in CI).
    """
    note = root / f"{name}.json"
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if note.is_file():
            noted: Note = json.loads(note.read_text())
            return noted
        started = start()
        note.write_text(json.dumps(started))
        return started


def stop_noted(root: Path) -> None:
    """Stop every server a worker noted under ``root`` and delete its files (the controller,
    once every worker is done).

    The broker is killed outright: its data is thrown away, so a controlled shutdown would only
    make the session end later.
    """
    kafka = root / f"{_KAFKA}.json"
    if kafka.is_file():
        note = json.loads(kafka.read_text())
        if _runs_from(int(note["pid"]), note["workdir"]):
            os.kill(int(note["pid"]), signal.SIGKILL)
        shutil.rmtree(note["workdir"], ignore_errors=True)
    postgres = root / f"{_POSTGRES}.json"
    if postgres.is_file():
        PostgresServer(Path(json.loads(postgres.read_text())["workdir"])).close(remove=True)
    shutil.rmtree(root, ignore_errors=True)


def _runs_from(pid: int, workdir: str) -> bool:
    """Whether ``pid`` is still the broker of ``workdir`` (its command line names the
    directory), so a reused process id is never killed."""
    try:
        return workdir.encode() in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
