"""Peak memory of a PostgreSQL server while a benchmark runs (not a test): every `--every` seconds, the
PSS summed over the postmaster and its children (shared buffers counted once, split among the processes
that touch them) and the largest single-process RSS. The peaks are rewritten to OUT at each sample, so
killing the sampler loses nothing. The "server PSS peak" figures of docs/benchmarks.md ("Scale") come
from it:

    python -m benchmarks.server_memory $VSTORE_HOME/pg /tmp/load-server.json & SAMPLER=$!
    vstore bench synth --profile clip --rows 1000000 --caption-sample 2000 --json
    kill $SAMPLER

Linux only (/proc). Waits for postmaster.pid, so it may start before the server does.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def _children(pid: int) -> list[int]:
    try:
        return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def _memory_kb(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process in kB; (0, 0) once it has exited."""
    pss = rss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
            elif line.startswith("Rss:"):
                rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def _postmaster(pgdata: Path) -> int | None:
    try:
        return int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def sample(pgdata: Path, out: Path, every: float) -> None:
    peak = {"max_pss_mb": 0.0, "max_proc_rss_mb": 0.0, "samples": 0}
    while True:
        root = _postmaster(pgdata)
        if root is not None:
            sizes = [_memory_kb(pid) for pid in [root, *_children(root)]]
            peak["max_pss_mb"] = max(peak["max_pss_mb"], sum(p for p, _ in sizes) / 1024)
            peak["max_proc_rss_mb"] = max(peak["max_proc_rss_mb"], max(r for _, r in sizes) / 1024)
            peak["samples"] += 1
            out.write_text(json.dumps(peak))
        time.sleep(every)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("pgdata", type=Path, help="the server's data directory ($VSTORE_HOME/pg, embedded)")
    parser.add_argument("out", type=Path, help="JSON file for the peaks, rewritten at each sample")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between samples (default 2)")
    args = parser.parse_args()
    try:
        sample(args.pgdata, args.out, args.every)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
