"""The command behaves in a shell pipeline: a reader that stops early is not a crash."""

from __future__ import annotations

import subprocess
import sys


def test_output_piped_into_a_reader_that_stops_early_prints_no_traceback() -> None:
    writer = subprocess.Popen(
        [sys.executable, "-m", "leadrelay", "check-config", "--print-default"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert writer.stdout is not None
    writer.stdout.close()  # the reader is gone before anything is written, as `| head` can be
    # A hang detector, not a speed limit: on a loaded machine the import alone can take a minute.
    _, errors = writer.communicate(timeout=240)
    assert b"Traceback" not in errors, errors.decode()
    assert writer.returncode == 1
