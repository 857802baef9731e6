"""Import throughput (issue 24; not a test): `vstore bench synth` fills a scratch home with ROWS CLIP-like
512-d vectors (one caption each), `vstore export --format clip-retrieval` writes them in clip-retrieval's
layout, and `vstore import clip-retrieval` loads that layout into a second, fresh home (halfvec by default,
so the HNSW build is deferred and rebuilt once). The import runs as its own process, so its peak RSS is the
client's alone; it is sampled every 0.2 s. The figures of docs/scale.md ("Encode on a cluster, load with
vstore") come from:

    python -m benchmarks.import_throughput --rows 1000000 --out /tmp/import-1m.json

Both homes live under a temp folder (or --work) and are stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from vstore.bench.synth import load_synthetic
from vstore.compare.export import export
from vstore.config import Settings
from vstore.db import embedded
from vstore.db.migrations import init

MODEL, PRETRAINED = "ViT-B-32", "random"


def _vstore(home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "VSTORE_HOME": str(home)}
    env.pop("VSTORE_DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "vstore", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--storage", default="halfvec", choices=("vector", "halfvec"))
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp folder)")
    parser.add_argument("--out", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="vstore-import-", dir=args.work))
    source, target = Settings(home=work / "source"), Settings(home=work / "target")
    try:
        embedded.start(source)
        init(source, MODEL, PRETRAINED, "vector")
        started = time.perf_counter()
        load_synthetic(source, args.rows, profile="clip", captions_per_image=1)
        synth_s = time.perf_counter() - started
        layout = work / "layout"
        exported = export(source, layout, format="clip-retrieval")
        embedded.stop(source)
        layout_mb = sum(f.stat().st_size for f in layout.rglob("*") if f.is_file()) / 1e6

        embedded.start(target)
        process = _vstore(
            target.home,
            "import", "clip-retrieval", str(layout), "--model", MODEL, "--pretrained", PRETRAINED,
            "--storage", args.storage, "--json",
        )  # fmt: skip
        peak = 0
        watched = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.2)
        out, _ = process.communicate()
        if process.returncode:
            raise SystemExit(f"the import failed (exit {process.returncode})")
        report = json.loads(out)
        figures = {
            "rows": args.rows,
            "storage": args.storage,
            "synth_s": round(synth_s, 1),
            "export_s": round(exported.seconds, 1),
            "layout_mb": round(layout_mb, 1),
            "import_s": round(report["seconds"], 1),
            "index_rebuild_s": round(report["index_s"], 1),
            "copy_s": round(report["seconds"] - report["index_s"], 1),
            "rows_per_s_copy": round(args.rows / max(report["seconds"] - report["index_s"], 1e-9)),
            "rows_per_s_with_index": round(report["rows_per_second"]),
            "client_peak_rss_mb": round(peak / 1e6, 1),
            "load_average": os.getloadavg(),
        }
        print(json.dumps(figures, indent=2))
        if args.out:
            args.out.write_text(json.dumps(figures, indent=2) + "\n")
    finally:
        for settings in (source, target):
            try:
                embedded.stop(settings)
            except Exception:  # noqa: BLE001 (a scratch server that did not start is fine)
                pass
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
