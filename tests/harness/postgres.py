"""A throwaway PostgreSQL cluster for integration tests, plus per-test scratch databases.

The cluster lives in a temporary directory, listens on a free loopback port with trust auth and
is tuned for speed over durability (``fsync=off``): it holds nothing worth keeping. ``initdb``
refuses to run as root, so as root every server command runs as the ``postgres`` system user
that Debian's package creates.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.harness.common import HarnessError, HarnessUnavailableError, free_port, log_tail

DATABASE = "leadrelay_test"
SUPERUSER = "postgres"
_SERVER_OPTIONS = (
    "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off "
    "-c full_page_writes=off -c max_connections=200"
)


def postgres_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl`` (``pg_config --bindir``, else the newest
    ``/usr/lib/postgresql/*/bin``, since Debian keeps them off ``PATH``)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        result = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(Path(result.stdout.strip()))
    candidates.extend(sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_major, reverse=True))
    initdb = shutil.which("initdb")
    if initdb is not None:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    raise HarnessUnavailableError(
        "PostgreSQL server binaries not found: install `postgresql` "
        "or set LEADRELAY_TEST_DATABASE_URL"
    )


def _major(bindir: Path) -> int:
    match = re.fullmatch(r"\d+", bindir.parent.name)
    return int(match.group()) if match else 0


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; ``url`` points at ``leadrelay_test``."""

    def __init__(
        self, workdir: Path | None = None, *, start_timeout: float = 60.0, stop_at_exit: bool = True
    ) -> None:
        self._owns_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="leadrelay-pg-"))
        self.port = free_port()
        self.start_timeout = start_timeout
        self._bindir: Path | None = None
        self._stop_at_exit = stop_at_exit
        """False: the cluster outlives this process (shared by pytest workers, the controller
        stops it)."""
        self._atexit_registered = False

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``leadrelay_test`` database."""
        return f"postgresql+asyncpg://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    @property
    def data_dir(self) -> Path:
        return self.workdir / "data"

    @property
    def log_path(self) -> Path:
        return self.workdir / "postgres.log"

    def start(self) -> None:
        """Create the cluster on first use, start it, and create ``leadrelay_test``."""
        self._bindir = postgres_bindir()
        self._hand_workdir_to_server_user()
        if not (self.data_dir / "PG_VERSION").is_file():
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", SUPERUSER, "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync",
            )  # fmt: skip
        self._run(
            "pg_ctl", "start", "-D", str(self.data_dir), "-l", str(self.log_path), "-w",
            "-t", str(int(self.start_timeout)),
            "-o", f"-p {self.port} -k {self.workdir} {_SERVER_OPTIONS}",
        )  # fmt: skip
        if self._stop_at_exit and not self._atexit_registered:
            atexit.register(self.stop)
            self._atexit_registered = True
        if not self._database_exists():
            self._run(
                "createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, DATABASE
            )

    def stop(self) -> None:
        """Stop the server if it runs (fast shutdown: open sessions are disconnected), whichever
        process started it."""
        if not (self.data_dir / "postmaster.pid").is_file():
            return
        self._bindir = self._bindir or postgres_bindir()
        self._run("pg_ctl", "stop", "-D", str(self.data_dir), "-m", "fast", "-w")

    def close(self, *, remove: bool = False) -> None:
        """Stop the server and delete its directory if this object created it (or ``remove``)."""
        self.stop()
        if self._owns_workdir or remove:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _database_exists(self) -> bool:
        query = f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'"
        output = self._run(
            "psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-d", "postgres",
            "-tAc", query,
        )  # fmt: skip
        return output.strip() == "1"

    def _hand_workdir_to_server_user(self) -> None:
        if _as_root():
            shutil.chown(self.workdir, user=SUPERUSER)

    def _run(self, program: str, *args: str) -> str:
        """Run a PostgreSQL program (as ``postgres`` when we are root) and return its stdout."""
        assert self._bindir is not None
        command = [str(self._bindir / program), *args]
        if _as_root():
            runuser = shutil.which("runuser")
            if runuser is None:
                raise HarnessUnavailableError("running as root needs `runuser` to drop to postgres")
            command = [runuser, "-u", SUPERUSER, "--", *command]
        result = subprocess.run(
            command, cwd=self.workdir, capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise HarnessError(
                f"{program} failed ({result.returncode}):\n{result.stdout}{result.stderr}\n"
                f"server log:\n{log_tail(self.log_path)}"
            )
        return result.stdout


def _as_root() -> bool:
    return os.geteuid() == 0


@asynccontextmanager
async def scratch_database(server_url: str) -> AsyncIterator[str]:
    """Create an empty, uniquely named database next to ``server_url``'s; yield its URL; drop it.

    Each test gets a clean schema without paying for a new cluster. ``WITH (FORCE)`` drops it
    even if the test leaked a connection.
    """
    url = make_url(server_url)
    name = f"lr_{uuid.uuid4().hex[:12]}"
    admin = create_async_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            async with admin.connect() as conn:
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        await admin.dispose()
