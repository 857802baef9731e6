"""Crash tests without races: the child runs with VSTORE_TEST_PAUSE=POINT:N (Settings.pause_point), stops
at that point after N committed units and waits for the test's signal, so the kill always lands mid-work
(never after the work finished, which made these tests skip)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from vstore.config import Settings


def child_env(settings: Settings, pause: str | None = None, **extra: str) -> dict[str, str]:
    """The environment of a `python -m vstore.cli` child on the test's database (no VSTORE_* of ours)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VSTORE_")}
    env.update(VSTORE_DATABASE_URL=str(settings.database_url), VSTORE_HOME=str(settings.home), **extra)
    if pause is not None:
        env["VSTORE_TEST_PAUSE"] = pause
    return env


def wait_until_paused(process: subprocess.Popen, home: Path, point: str, seconds: float = 180) -> None:
    """Block until the child wrote HOME/paused-at-POINT; fail with its stderr if it ended first."""
    marker = Path(home) / f"paused-at-{point}"
    deadline = time.monotonic() + seconds
    while not marker.is_file():
        if process.poll() is not None:
            err = process.stderr.read() if process.stderr else b""
            raise AssertionError(f"the child ended before pausing at {point}: {err!r}")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the child did not reach {point} in {seconds:.0f} s")
        time.sleep(0.02)
