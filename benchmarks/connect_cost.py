"""What a password costs per connection (docs/operate.md): one temporary embedded server, one trust-only role
added for the comparison, then N connect + SELECT 1 + close with trust and with scram-sha-256, interleaved.
It creates and deletes its own home and touches nothing else.

    python benchmarks/connect_cost.py [--n 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import psycopg

from vstore.config import Settings
from vstore.db import embedded

_SCRAM_LOCAL = "local   all          all            scram-sha-256"


def _once(url: str) -> float:
    began = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("SELECT 1")
    return time.perf_counter() - began


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200)
    n = parser.parse_args().n
    root = Path(tempfile.mkdtemp(prefix="vstore-connect-cost-"))
    settings = Settings(home=root / "home")
    try:
        scram = embedded.start(settings)
        with psycopg.connect(scram, autocommit=True) as conn:
            conn.execute("CREATE ROLE connect_cost_trust LOGIN")
            hba = settings.pgdata / "pg_hba.conf"
            rule = "local   all          connect_cost_trust     trust"
            hba.write_text(hba.read_text().replace(_SCRAM_LOCAL, f"{rule}\n{_SCRAM_LOCAL}"))
            conn.execute("SELECT pg_reload_conf()")
        time.sleep(1)  # the postmaster rereads pg_hba.conf on SIGHUP
        trust = scram.replace(scram.split("@")[0], "postgresql://connect_cost_trust")
        times: dict[str, list[float]] = {"trust": [], "scram-sha-256": []}
        for _ in range(n):
            times["trust"].append(_once(trust))
            times["scram-sha-256"].append(_once(scram))
    finally:
        embedded.stop(settings)
        shutil.rmtree(root, ignore_errors=True)
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    print(", ".join(f"{name} {ms:.1f} ms" for name, ms in medians.items()), end="")
    print(f" (median of {n} connect + SELECT 1 + close; load average {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
