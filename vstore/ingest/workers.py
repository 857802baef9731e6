"""Decode workers for ingest: read the bytes once, hash them, and hand them to encode/images.py. Runs in
a multiprocessing pool so the encoder never waits on I/O.

A task whose bytes hash to the `expected` digest (the row's stored hash, on --rescan or a touched file)
is not decoded at all: its stored embedding is still right.

A worker killed mid-task (the OOM killer on a hostile image, a crash in a decoder library) takes its task
with it, and multiprocessing.Pool would wait for that result forever. Each worker therefore announces
which group of files it starts on; a group whose worker is gone is decoded again one file per task, so
only the file that kills its worker is recorded as failed, and the ingest goes on.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vstore.encode.images import capture_time, describe, prepare
from vstore.errors import ImageError

_transform: Callable[[Any], Any] | None = None  # the model's preprocess, set in each worker by init_worker
_started: Any = None  # a SimpleQueue: (worker pid, group id) put when a worker starts on a group

WORKER_DIED = (
    "the decode worker process died while reading this file (killed, e.g. by the out-of-memory killer: "
    "an oversized or hostile image?); check the file, then re-run the ingest"
)
POLL_S = 0.5  # how often a wait for a group checks that its worker is still alive


@dataclass(frozen=True)
class DecodeTask:
    index: int
    file: str | bytes  # os.fspath of the image; bytes keep non-UTF-8 names intact
    expected_hash: str | None = None


@dataclass
class Decoded:
    index: int
    content_hash: str | None = None
    size: int | None = None
    mtime: float | None = None
    width: int | None = None
    height: int | None = None
    taken_at: float | None = None  # EXIF capture date (POSIX seconds) of a decoded file that has one
    pixels: np.ndarray | None = None  # None when the hash matched `expected_hash` or decoding failed
    error: str | None = None
    seconds: float = 0.0


def init_worker(transform: Callable[[Any], Any], threads: int = 1, started: Any = None) -> None:
    """Pool initializer: keep the transform in the worker; one torch thread per worker (the pool is the
    parallelism, and the encoder needs the cores)."""
    global _transform, _started
    _transform, _started = transform, started
    try:
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
    except ImportError:  # pragma: no cover - torch is a dependency
        pass


def decode_one(task: DecodeTask) -> Decoded:
    started = time.perf_counter()
    result = Decoded(index=task.index)
    try:
        stat = os.stat(task.file)
        result.size, result.mtime = stat.st_size, stat.st_mtime
        with open(task.file, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        result.error = f"unreadable: {exc.strerror or describe(exc)}"
        result.seconds = time.perf_counter() - started
        return result
    result.content_hash = hashlib.sha256(data).hexdigest()
    if not data:
        result.error = "empty file (0 bytes)"
    elif result.content_hash != task.expected_hash:
        try:
            result.pixels, result.width, result.height = prepare(data, _transform)
            result.taken_at = capture_time(data)
        except ImageError as exc:
            result.error = str(exc)
    result.seconds = time.perf_counter() - started
    return result


def decode_many(tasks: Sequence[DecodeTask], group: int | None = None) -> list[Decoded]:
    if _started is not None and group is not None:
        _started.put((os.getpid(), group))
    return [decode_one(task) for task in tasks]


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class DecodePool:
    """Feeds decode tasks to a process pool (or decodes inline with workers=0), keeping a bounded number
    in flight so memory stays flat however large the dataset, and hands results back in order.

    `transform` is called for the model's preprocess only when the first file has to be read: a run
    where every file is unchanged starts no worker and loads no model."""

    def __init__(self, transform: Callable[[], Any], workers: int, batch_size: int) -> None:
        self.workers = workers
        self.per_task = max(1, min(8, batch_size // max(1, workers)))
        self.ahead = max(2 * batch_size, 4 * self.per_task * max(1, workers))
        self.transform = transform
        self.pool: Any = None
        self.started = False
        self._groups = 0  # group ids handed out
        self._working: dict[int, int] = {}  # worker pid -> the group it last started

    def _start(self) -> None:
        self.started = True
        transform = self.transform()
        if self.workers > 0:
            import multiprocessing

            # fork: workers start in milliseconds and share the parent's imports; they run one torch
            # thread each (init_worker), the safe pattern torch's DataLoader uses.
            method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
            context = multiprocessing.get_context(method)
            self._started = context.SimpleQueue()
            self.pool = context.Pool(self.workers, init_worker, (transform, 1, self._started))
        else:
            init_worker(transform, 0)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.terminate()
            self.pool.join()

    def _submit(self, tasks: list[DecodeTask]) -> tuple[int, list[DecodeTask], Any]:
        assert self.pool is not None
        self._groups += 1
        return self._groups, tasks, self.pool.apply_async(decode_many, (tasks, self._groups))

    def _drain_started(self) -> None:
        """Read the workers' announcements (often, so their pipe never fills and blocks a worker)."""
        while not self._started.empty():
            pid, started = self._started.get()
            self._working[pid] = started

    def _worker_died_on(self, group: int) -> bool:
        self._drain_started()
        return any(g == group and not _alive(pid) for pid, g in self._working.items())

    def _collect(self, group: int, tasks: list[DecodeTask], handle: Any) -> list[Decoded]:
        """The results of one group; a group whose worker died is decoded again one file per task, and a
        single file whose worker died is recorded as failed."""
        self._drain_started()
        while not handle.ready():
            handle.wait(POLL_S)
            if not handle.ready() and self._worker_died_on(group):
                handle.wait(POLL_S)  # a result already on its way still wins
                if handle.ready():
                    break
                if len(tasks) == 1:
                    return [Decoded(index=tasks[0].index, error=WORKER_DIED)]
                return [r for task in tasks for r in self._collect(*self._submit([task]))]
        return handle.get()

    def run(self, items: Iterator[Any]) -> Iterator[tuple[Any, float]]:
        """Items are the ingest plan's (.record.file, .decode, .expected_hash). Yield (item with .result
        filled in, seconds the caller waited for it), in source order."""
        window: deque[tuple[list[Any], Any]] = deque()
        group: list[Any] = []
        in_flight = 0
        max_groups = self.ahead // self.per_task + 2

        def submit() -> None:
            nonlocal group, in_flight
            tasks = [
                DecodeTask(i, os.fsencode(item.record.file), item.expected_hash)
                for i, item in enumerate(group)
                if item.decode
            ]
            if tasks and not self.started:
                self._start()
            handle = self._submit(tasks) if self.pool is not None and tasks else tasks
            in_flight += len(tasks)
            window.append((group, handle))
            group = []

        exhausted = False
        while True:
            while not exhausted and in_flight < self.ahead and len(window) < max_groups:
                item = next(items, None)
                if item is None:
                    exhausted = True
                else:
                    group.append(item)
                    if sum(i.decode for i in group) >= self.per_task or len(group) >= 256:
                        submit()
            if exhausted and group:
                submit()
            if not window:
                return
            done, handle = window.popleft()
            started = time.perf_counter()
            results = decode_many(handle) if isinstance(handle, list) else self._collect(*handle)
            waited = time.perf_counter() - started
            in_flight -= len(results)
            by_index = {r.index: r for r in results}
            for index, item in enumerate(done):
                item.result = by_index.get(index)
                yield item, waited
                waited = 0.0
