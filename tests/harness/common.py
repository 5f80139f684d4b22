"""Small process and network helpers shared by the Kafka and PostgreSQL harnesses."""

from __future__ import annotations

import os
import random
import socket
from collections import deque
from pathlib import Path


class HarnessError(RuntimeError):
    """A harness server could not be prepared or started; the message carries the log tail."""


class HarnessUnavailableError(HarnessError):
    """A prerequisite (java, mvn, PostgreSQL binaries) is missing on this machine.

    Kept apart from :class:`HarnessError` so a developer's machine can skip the test while CI,
    which installs everything, fails loudly instead.
    """


def free_port() -> int:
    """An unused loopback port outside the kernel's ephemeral range.

    Servers here are restarted on the same port to simulate outages. A port from the ephemeral
    range could meanwhile become the local end of some client's outbound connection, so the
    restart would fail to bind; ports below that range are never handed out that way.
    """
    low, _high = _ephemeral_range()
    candidates = random.sample(range(10_000, low), k=min(64, max(0, low - 10_000)))
    for port in candidates:
        if _bindable(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        fallback: int = sock.getsockname()[1]
        return fallback


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def log_tail(path: Path, lines: int = 60) -> str:
    """The end of a server log, to put in an error message instead of "see the log"."""
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except FileNotFoundError:
        return f"(no log at {path})"


def cache_root() -> Path:
    """Where downloaded test infrastructure lives between runs (``$XDG_CACHE_HOME/leadrelay``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "leadrelay"
