"""A worker whose shutdown hangs (Faust waiting on a broker that went away) still exits."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_shutdown_that_does_not_finish_in_time_ends_the_process() -> None:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c",
         "import time\nfrom streams.worker import exit_after\nexit_after(0.3)\ntime.sleep(30)"],
        cwd=REPO, capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 1
    assert "shutdown took longer than 0.3s; exiting now" in done.stderr
    assert time.monotonic() - started < 15
