"""`vstore serve` benchmark (not a test): warm text->image queries end to end through HTTP (encode + search +
JSON over a real socket to a real `vstore serve` process), side by side in the same run with `vstore search`
doing the same texts in fresh processes (process start + model load + encode + search), and image-upload
queries; with the server's own split of each request into encode, search and serialisation.

    VSTORE_HOME=/tmp/vsbench-serve python -m benchmarks.serve_bench --rows 100000 --json > serve.json

A fresh VSTORE_HOME gets the real ViT-B-32 graph with random weights (`vstore init --model ViT-B-32
--pretrained random`: the same FLOPs as the real model) and `vstore bench synth --rows N` (synthetic,
clustered vectors). The benchmark deletes its own texts from the text cache between the HTTP and the CLI
runs, so both encode every text; it refuses a database holding datasets it did not make.
Figures and their reading are in docs/serve.md.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from benchmarks.search_bench import Latency
from vstore.config import Settings
from vstore.db.connect import connection, scalar

ADJECTIVES = ["red", "small", "old", "happy", "wet", "wooden", "striped", "bright", "sleepy", "broken"]
SUBJECTS = ["dog", "cat", "bicycle", "boat", "pizza", "train", "kite", "horse", "clock", "umbrella"]
PLACES = ["on a beach", "in a kitchen", "at night", "in the snow", "on a street", "in a park"]


@dataclass
class ServeBenchReport:
    rows: int
    model: str
    device: str
    http_text: Latency | None = None  # client-side wall time of GET /api/search, keep-alive connection
    http_text_split: dict[str, float] = field(default_factory=dict)  # server took_ms medians, + transport
    http_upload: Latency | None = None  # POST /api/search/image with a 640x480 JPEG
    http_upload_split: dict[str, float] = field(default_factory=dict)
    cli_text: Latency | None = None  # `vstore search TEXT -k K --json` in a fresh process
    server_start_s: float = 0.0  # `vstore serve` start to its first answer (model load + warm-up)
    notes: list[str] = field(default_factory=list)


def texts(n: int) -> list[str]:
    """n distinct short captions, in a fixed order."""
    made = [f"a {a} {s} {p}" for p in PLACES for a in ADJECTIVES for s in SUBJECTS]
    if n > len(made):
        raise SystemExit(f"--queries at most {len(made)}")
    return [made[(i * 37) % len(made)] for i in range(n)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare_database(settings: Settings, rows: int) -> None:
    """The model record and `rows` synthetic images (only on a database that holds nothing else)."""
    from vstore.bench.guard import refuse_user_data
    from vstore.bench.synth import SYNTH_FORMAT, load_synthetic
    from vstore.db.migrations import init, schema_state

    if schema_state(settings).model is None:
        init(settings, model="ViT-B-32", pretrained="random")
    with connection(settings) as conn:
        refuse_user_data(conn, lambda _name, _root, fmt: fmt == SYNTH_FORMAT)
        have = int(scalar(conn, "SELECT count(*) FROM images WHERE status = 'ok'"))
    if have != rows:
        load_synthetic(settings, rows, progress=lambda stage, done, total: print(f"  {stage} {done}/{total}"))


def forget_texts(settings: Settings, queries: list[str]) -> None:
    """Delete the benchmark's texts from the text cache, so the next run encodes each of them again."""
    with connection(settings) as conn:
        conn.execute("DELETE FROM text_queries WHERE text = ANY(%s)", (queries,))
        conn.commit()


def start_server(port: int) -> tuple[subprocess.Popen[str], float]:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "vstore", "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"vstore serve exited: {process.stderr.read() if process.stderr else ''}")
        try:
            connection_ = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection_.request("GET", "/health")
            if connection_.getresponse().status == 200:
                return process, time.perf_counter() - started
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("vstore serve did not answer within 300 s")


def timed_request(
    conn: http.client.HTTPConnection, method: str, url: str, body: bytes | None = None, headers: Any = None
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    conn.request(method, url, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    wall_ms = (time.perf_counter() - started) * 1000.0
    if response.status != 200:
        raise SystemExit(f"{method} {url} -> {response.status}: {data[:500]!r}")
    return wall_ms, json.loads(data)


def split_medians(walls: list[float], bodies: list[dict[str, Any]]) -> dict[str, float]:
    """Medians of the server's took_ms stages, plus `transport`: the client's wall time less the server's
    total (HTTP, uvicorn, FastAPI's parameter parsing and thread hand-off, the client's JSON parse)."""
    stages = bodies[0]["took_ms"].keys()
    split = {stage: float(np.median([b["took_ms"][stage] for b in bodies])) for stage in stages}
    gaps = [wall - body["took_ms"]["total"] for wall, body in zip(walls, bodies, strict=True)]
    split["transport"] = float(np.median(gaps))
    return split


def http_text(port: int, queries: list[str], k: int) -> tuple[Latency, dict[str, float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    for warm in ("warm-up one", "warm-up two", "warm-up three"):  # not timed; the first requests set up
        timed_request(conn, "GET", "/api/search?" + urllib.parse.urlencode({"q": warm, "k": k}))
    walls, bodies = [], []
    for text in queries:
        wall, body = timed_request(conn, "GET", "/api/search?" + urllib.parse.urlencode({"q": text, "k": k}))
        assert len(body["hits"]) == k
        walls.append(wall)
        bodies.append(body)
    conn.close()
    return Latency.of_ms(walls), split_medians(walls, bodies)


def jpeg(index: int) -> bytes:
    """A 640x480 JPEG (the size of a COCO photo), different for each index."""
    from PIL import Image

    rng = np.random.default_rng(index)
    base = rng.integers(0, 255, size=(6, 8, 3), dtype=np.uint8)
    image = Image.fromarray(base, "RGB").resize((640, 480), Image.Resampling.BICUBIC)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def http_upload(port: int, n: int, k: int) -> tuple[Latency, dict[str, float]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    boundary = "vstorebenchboundary"
    walls, bodies = [], []
    for i in range(n + 2):
        data = jpeg(i)
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q{i}.jpg"\r\n'
                "Content-Type: image/jpeg\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        wall, answer = timed_request(conn, "POST", f"/api/search/image?k={k}", body, headers)
        if i >= 2:  # the first two are warm-up
            walls.append(wall)
            bodies.append(answer)
    conn.close()
    return Latency.of_ms(walls), split_medians(walls, bodies)


def cli_text(queries: list[str], k: int) -> Latency:
    walls = []
    for text in queries:
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-m", "vstore", "search", text, "-k", str(k), "--json"],
            capture_output=True,
            text=True,
        )
        walls.append((time.perf_counter() - started) * 1000.0)
        if done.returncode != 0 or len(done.stdout.splitlines()) != k:
            raise SystemExit(f"vstore search failed: {done.stderr[-1000:]}")
    return Latency.of_ms(walls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="synthetic images in the database")
    parser.add_argument("--queries", type=int, default=200, help="distinct texts through HTTP")
    parser.add_argument("--cli-queries", type=int, default=20, help="of those, how many through the CLI")
    parser.add_argument("--uploads", type=int, default=50, help="image-upload queries through HTTP")
    parser.add_argument("-k", type=int, default=10)
    parser.add_argument("--json", action="store_true", help="the report as JSON on stdout")
    args = parser.parse_args(argv)
    if not os.environ.get("VSTORE_HOME") and not os.environ.get("VSTORE_DATABASE_URL"):
        raise SystemExit("set VSTORE_HOME to a scratch folder (e.g. /tmp/vsbench-serve): this adds rows")

    load_before = os.getloadavg()
    settings = Settings.from_env()
    prepare_database(settings, args.rows)
    queries = texts(args.queries)
    forget_texts(settings, queries)
    port = free_port()
    server, start_s = start_server(port)
    try:
        health = _health(port)
        report = ServeBenchReport(rows=args.rows, model=health["model"], device=health["device"])
        report.server_start_s = start_s
        report.http_text, report.http_text_split = http_text(port, queries, args.k)
        report.http_upload, report.http_upload_split = http_upload(port, args.uploads, args.k)
    finally:
        server.terminate()
        server.wait(timeout=30)
    forget_texts(settings, queries)  # the CLI encodes the same texts again
    report.cli_text = cli_text(queries[: args.cli_queries], args.k)
    load_after = os.getloadavg()
    report.notes.append(
        f"{os.cpu_count()} CPUs shared with other work; 1-minute load average {load_before[0]:.1f} at the "
        f"start, {load_after[0]:.1f} at the end: compare figures of the same run, not across runs"
    )
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    else:
        print_table(report)
    return 0


def _health(port: int) -> dict[str, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    return timed_request(conn, "GET", "/health")[1]


def print_table(report: ServeBenchReport) -> None:
    print(f"{report.rows:,} images, {report.model} on {report.device}; start {report.server_start_s:.1f} s")
    runs = {"HTTP text": report.http_text, "HTTP upload": report.http_upload, "CLI text": report.cli_text}
    for name, latency in runs.items():
        if latency is not None:
            print(f"{name:<12} p50 {latency.p50_ms:8.1f} ms  p95 {latency.p95_ms:8.1f} ms  (n={latency.n})")
    for name, split in (("text", report.http_text_split), ("upload", report.http_upload_split)):
        print(f"server split, {name} (medians, ms): " + ", ".join(f"{k} {v:.2f}" for k, v in split.items()))


if __name__ == "__main__":
    sys.exit(main())
