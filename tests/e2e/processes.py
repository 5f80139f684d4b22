"""Starting the ``leadrelay`` command as a user or a container does, and waiting for it."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx


def leadrelay_command(*args: str) -> list[str]:
    """The installed ``leadrelay`` script, or the module when only the package is importable."""
    script = shutil.which("leadrelay")
    return [script, *args] if script else [sys.executable, "-m", "leadrelay", *args]


def wait_until_ready(
    process: subprocess.Popen[bytes], url: str, log: Path, *, within: float
) -> None:
    """Poll ``{url}/readyz`` until 200; fail with the log's tail if the process exits or stalls."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"leadrelay exited early:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"leadrelay not ready in {within}s:\n{log.read_text()[-4000:]}")
