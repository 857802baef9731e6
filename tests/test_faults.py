"""Faults that must end in a recorded failure or one `Error:` line, never a hang or a traceback: a decode
worker killed mid-ingest, the server dropping the ingest's connection, oversized query images, and a
first use without network."""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import replace

from tests import imagegen
from vstore.db.connect import connection
from vstore.ingest.pipeline import ingest
from vstore.ingest.workers import WORKER_DIED

KILLER_SIZE = (77, 77)


class _KillOnSize:
    """The model's preprocess, except that an image of KILLER_SIZE pixels SIGKILLs the worker decoding
    it: what the out-of-memory killer does to a worker holding a huge image."""

    def __init__(self, inner, size: tuple[int, int]) -> None:
        self.inner, self.size = inner, size

    def __call__(self, image):
        if image.size == self.size:
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner(image)


class _WorkerKillingEncoder:
    def __init__(self, inner) -> None:
        self.inner = inner

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def image_transform(self):
        return _KillOnSize(self.inner.image_transform(), KILLER_SIZE)


def test_a_decode_worker_killed_mid_ingest_fails_its_file_and_the_ingest_goes_on(
    settings, tiny_encoder, tmp_path
):
    folder = tmp_path / "photos"
    folder.mkdir()
    for index in range(7):
        size = KILLER_SIZE if index == 3 else (64, 48)
        imagegen.draw(index, size).save(folder / f"{index}.png")
    outcome: dict = {}

    def run() -> None:
        two_workers = replace(settings, workers=2, batch_size=8)  # 4 files per worker task
        outcome["report"] = ingest(two_workers, folder, encoder=_WorkerKillingEncoder(tiny_encoder))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=300)
    assert not thread.is_alive(), "the ingest hung on the killed worker's task"
    report = outcome["report"]
    assert report.failed == [("3.png", WORKER_DIED)]
    assert report.added == 6
    with connection(settings, autocommit=True) as conn:
        rows = conn.execute("SELECT path, status FROM images ORDER BY path").fetchall()
    assert rows == [(f"{i}.png", "failed" if i == 3 else "ok") for i in range(7)]
