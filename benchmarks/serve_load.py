"""`vstore serve` under load (a benchmark, not a test): C clients, each on its own kept-alive connection,
send requests back to back for S seconds to a real `vstore serve` process: text searches only, then with
a share of image uploads. Several server variants (source trees: the code before and after a change) run
side by side in one run, interleaved, over the same database.

    git worktree add --detach /tmp/vstore-before <commit>
    VSTORE_HOME=/tmp/vsbench-load python -m benchmarks.serve_load --rows 100000 --clients 16 --seconds 60 \\
        --upload-share 0,0.3 --tree before=/tmp/vstore-before --tree after=. --repeats 3 --json > load.json

A fresh VSTORE_HOME gets the real ViT-B-32 graph with random weights (same FLOPs as the real model) and
`--rows` synthetic images and captions (benchmarks/serve_bench.py's prepare_database; it refuses a
database holding datasets it did not make). Texts come from a fixed list of 600 captions, each client
drawing at random. With `--cache warm` (the default) all 600 are put in the text cache before the runs,
so a text search is the cache read and the HNSW search (what a server mostly answers: the page's paging
and back/forward, repeated queries), while every upload runs the image tower; with `--cache cold` they
are deleted from the cache before every run, so a text is encoded the first time it comes. Uploads are
640x480 JPEGs (20 different ones). Per run: requests per second, errors (any answer but 200, or a broken
connection), text p50/p95/p99, upload p50/p95, and the server's peak resident memory.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.serve_bench import forget_texts, free_port, jpeg, prepare_database, texts
from vstore.config import Settings

BOUNDARY = "vstoreloadboundary"


@dataclass
class RunReport:
    variant: str
    upload_share: float
    repeat: int
    seconds: float
    clients: int
    requests: int = 0
    rps: float = 0.0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    text_n: int = 0
    text_p50_ms: float = 0.0
    text_p95_ms: float = 0.0
    text_p99_ms: float = 0.0
    upload_n: int = 0
    upload_p50_ms: float = 0.0
    upload_p95_ms: float = 0.0
    rss_peak_mib: float = 0.0
    load_average: float = 0.0  # 1-minute, at the end of the run


@dataclass
class Server:
    variant: str
    process: subprocess.Popen[str]
    port: int


def upload_body(index: int) -> bytes:
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="q{index}.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + jpeg(index) + f"\r\n--{BOUNDARY}--\r\n".encode()


def start_server(variant: str, tree: Path, connections: int | None) -> Server:
    """`python -m vstore serve` with `tree` first on the path (its vstore, sql/ and alembic/)."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    command = [sys.executable, "-m", "vstore", "serve", "--port", str(port)]
    if connections is not None:
        command += ["--connections", str(connections)]
    process = subprocess.Popen(
        command, cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(
                f"{variant}: vstore serve exited: {process.stderr.read() if process.stderr else ''}"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return Server(variant, process, port)
        except OSError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"{variant}: vstore serve did not answer within 600 s")


class Client(threading.Thread):
    """Requests back to back until `stop`; records (kind, status or error, wall ms) of each."""

    def __init__(
        self,
        port: int,
        seed: int,
        share: float,
        queries: list[str],
        bodies: list[bytes],
        stop: threading.Event,
    ) -> None:
        super().__init__(daemon=True)
        self.port, self.share, self.queries, self.bodies, self.stop = port, share, queries, bodies, stop
        self.random = random.Random(seed)
        self.records: list[tuple[str, str, float]] = []

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
        while not self.stop.is_set():
            upload = self.random.random() < self.share
            started = time.perf_counter()
            try:
                if upload:
                    body = self.random.choice(self.bodies)
                    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
                    conn.request("POST", "/api/search/image?k=10", body=body, headers=headers)
                else:
                    query = urllib.parse.urlencode({"q": self.random.choice(self.queries), "k": 10})
                    conn.request("GET", f"/api/search?{query}")
                response = conn.getresponse()
                response.read()
                outcome = str(response.status)
            except (OSError, http.client.HTTPException) as exc:
                outcome = type(exc).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            wall_ms = (time.perf_counter() - started) * 1000.0
            self.records.append(("upload" if upload else "text", outcome, wall_ms))
        conn.close()


def sample_rss(pid: int, stop: threading.Event, peak: list[float]) -> None:
    import psutil

    process = psutil.Process(pid)
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], process.memory_info().rss / 2**20)
        except psutil.Error:
            return
        stop.wait(0.25)


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 1) if values else 0.0


def run_load(
    server: Server,
    share: float,
    repeat: int,
    args: argparse.Namespace,
    queries: list[str],
    bodies: list[bytes],
) -> RunReport:
    stop = threading.Event()
    clients = [
        Client(server.port, 1000 * repeat + i, share, queries, bodies, stop) for i in range(args.clients)
    ]
    peak = [0.0]
    sampler = threading.Thread(target=sample_rss, args=(server.process.pid, stop, peak), daemon=True)
    sampler.start()
    started = time.perf_counter()
    for client in clients:
        client.start()
    time.sleep(args.seconds)
    stop.set()
    for client in clients:
        client.join(timeout=180)
    elapsed = time.perf_counter() - started
    sampler.join(timeout=5)
    records = [r for c in clients for r in c.records]
    report = RunReport(server.variant, share, repeat, round(elapsed, 1), args.clients)
    report.requests = len(records)
    report.rps = round(len(records) / elapsed, 1)
    bad = [outcome for _, outcome, _ in records if outcome != "200"]
    report.errors = len(bad)
    report.error_kinds = {kind: bad.count(kind) for kind in sorted(set(bad))}
    text = [ms for kind, outcome, ms in records if kind == "text" and outcome == "200"]
    upload = [ms for kind, outcome, ms in records if kind == "upload" and outcome == "200"]
    report.text_n, report.upload_n = len(text), len(upload)
    report.text_p50_ms, report.text_p95_ms = percentile(text, 50), percentile(text, 95)
    report.text_p99_ms = percentile(text, 99)
    report.upload_p50_ms, report.upload_p95_ms = percentile(upload, 50), percentile(upload, 95)
    report.rss_peak_mib = round(peak[0], 1)
    report.load_average = round(os.getloadavg()[0], 1)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic images in the database")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60.0, help="per run")
    parser.add_argument(
        "--upload-share", default="0,0.3", help="comma-separated shares of uploads, one run each"
    )
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="a server variant: the source tree to run `vstore serve` from (repeatable; default: this one)",
    )
    parser.add_argument("--connections", type=int, default=None, help="--connections for trees that take it")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--cache", choices=("warm", "cold"), default="warm", help="the texts cached or not")
    parser.add_argument("--json", action="store_true", help="the reports as JSON on stdout")
    args = parser.parse_args(argv)
    if not os.environ.get("VSTORE_HOME") and not os.environ.get("VSTORE_DATABASE_URL"):
        raise SystemExit("set VSTORE_HOME to a scratch folder (e.g. /tmp/vsbench-load): this adds rows")
    trees = [tuple(t.split("=", 1)) for t in args.tree] or [("current", ".")]
    shares = [float(s) for s in args.upload_share.split(",")]

    settings = Settings.from_env()
    prepare_database(settings, args.rows)
    queries = texts(600)
    bodies = [upload_body(i) for i in range(20)]
    log = sys.stderr
    forget_texts(settings, queries)
    if args.cache == "warm":
        print(f"caching {len(queries)} texts ...", file=log, flush=True)
        from vstore.search.store import Store

        with Store(settings) as store:
            store.cache_texts(queries)
    servers = []
    try:
        for name, path in trees:
            print(f"starting {name} from {path} ...", file=log, flush=True)
            supports = "--connections" in Path(path, "vstore", "cli", "serve.py").read_text()
            servers.append(start_server(name, Path(path), args.connections if supports else None))
        reports: list[RunReport] = []
        for repeat in range(args.repeats):
            for share in shares:
                order = servers if repeat % 2 == 0 else list(reversed(servers))
                for server in order:
                    if args.cache == "cold":
                        forget_texts(settings, queries)
                    report = run_load(server, share, repeat, args, queries, bodies)
                    reports.append(report)
                    print(_line(report), file=log, flush=True)
    finally:
        for server in servers:
            server.process.terminate()
            server.process.wait(timeout=60)
        forget_texts(settings, queries)
    if args.json:
        print(json.dumps([asdict(r) for r in reports], indent=2))
    else:
        for report in reports:
            print(_line(report))
    return 0


def _line(r: RunReport) -> str:
    return (
        f"{r.variant:<8} uploads {r.upload_share:.0%} #{r.repeat}: {r.requests} req, {r.rps} rps, "
        f"{r.errors} errors {r.error_kinds or ''}; text p50/p95/p99 {r.text_p50_ms}/{r.text_p95_ms}/"
        f"{r.text_p99_ms} ms (n={r.text_n}); upload p50/p95 {r.upload_p50_ms}/{r.upload_p95_ms} ms "
        f"(n={r.upload_n}); RSS peak {r.rss_peak_mib} MiB; load {r.load_average}"
    )


def summary(reports: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, float]]:
    """Medians over repeats per (variant, upload share): what docs/serve.md's table shows."""
    keys = sorted({(r["variant"], r["upload_share"]) for r in reports})
    fields = ("rps", "errors", "text_p50_ms", "text_p95_ms", "text_p99_ms", "upload_p50_ms", "upload_p95_ms")
    out = {}
    for key in keys:
        runs = [r for r in reports if (r["variant"], r["upload_share"]) == key]
        out[key] = {f: float(np.median([r[f] for r in runs])) for f in (*fields, "rss_peak_mib")}
    return out


if __name__ == "__main__":
    sys.exit(main())
