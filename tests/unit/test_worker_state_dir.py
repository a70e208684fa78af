"""Two workers on one state folder refuse to start instead of crashing at their first rebalance
(RocksDB's lock on a partition's directory); the lock goes with the process that held it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from streams.settings import SettingsError
from streams.worker import hold_state_dir

REPO = Path(__file__).resolve().parents[2]
HOLD = ("import sys, time\nfrom pathlib import Path\nfrom streams.worker import hold_state_dir\n"
        "lock = hold_state_dir(Path(sys.argv[1]))\nprint('held', flush=True)\ntime.sleep(60)")


def test_a_second_worker_on_the_same_folder_is_refused_until_the_first_is_gone(
        tmp_path: Path) -> None:
    state_dir = tmp_path / "faust" / "radar"
    assert not state_dir.exists()
    first = subprocess.Popen([sys.executable, "-c", HOLD, str(state_dir)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert first.stdout is not None and first.stdout.readline().strip() == "held"
        with pytest.raises(SettingsError) as refused:
            hold_state_dir(state_dir)
        message = str(refused.value)
        assert f"pid {first.pid}" in message and "its own RADAR_LOCAL_DIR" in message
    finally:
        os.kill(first.pid, signal.SIGKILL)  # kill -9: no clean-up runs
        first.wait(timeout=10)
    lock = hold_state_dir(state_dir)
    try:
        assert (state_dir / "worker.lock").read_text() == f"pid {os.getpid()}\n"
    finally:
        lock.close()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["faust", "radar", "worker.lock"]
