"""The test-only pause (Settings.pause_point, VSTORE_TEST_PAUSE=POINT:N) that makes crash tests
deterministic: off unless set, it stops only at its point's N-th unit and waits for a signal."""

from __future__ import annotations

import os
import signal
import threading

from vstore.config import Settings


def test_unset_or_another_point_or_count_returns_at_once(tmp_path):
    Settings(home=tmp_path).pause_point("ingest.batch", 1)
    paused = Settings.from_env({"VSTORE_HOME": str(tmp_path), "VSTORE_TEST_PAUSE": "ingest.batch:2"})
    assert paused.test_pause == "ingest.batch:2"
    paused.pause_point("reembed.images", 2)
    paused.pause_point("ingest.batch", 1)
    paused.pause_point("ingest.batch", 3)
    assert not list(tmp_path.iterdir())


def test_at_its_point_it_writes_the_marker_and_waits_for_a_signal(tmp_path):
    """The signal comes from another thread, as a test's kill may reach any thread of the child; the
    handler (here a flag, like finetune's Ctrl-C) runs and the work goes on."""
    paused = Settings.from_env({"VSTORE_HOME": str(tmp_path), "VSTORE_TEST_PAUSE": "finetune.step:3"})
    seen: list[int] = []
    previous = signal.signal(signal.SIGUSR1, lambda signum, frame: seen.append(signum))
    marker = tmp_path / "paused-at-finetune.step"

    def signal_once_paused() -> None:
        while not marker.is_file():
            threading.Event().wait(0.01)
        os.kill(os.getpid(), signal.SIGUSR1)

    sender = threading.Thread(target=signal_once_paused)
    sender.start()
    try:
        paused.pause_point("finetune.step", 3)
    finally:
        sender.join()
        signal.signal(signal.SIGUSR1, previous)
    assert seen == [signal.SIGUSR1]
    assert marker.read_text() == str(os.getpid())
