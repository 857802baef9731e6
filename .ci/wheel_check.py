"""CI: the wheel is the product (DESIGN.md). Build it, install it non-editable into a fresh virtual
environment, and run `--help` of every command plus one real call per wing against a temporary home with
the tiny test model (vstore-tiny ships in vstore/encode/model_configs; random weights, no network):
init, ingest the shipped sample, search, datasets, db status, index status, compare, eval, finetune one
step, reembed with its checkpoint, serve /health.

The fresh environment holds only the wheel; its dependencies come from the test environment through a
.pth file (site-packages folders of the python running this script). That reuses gigabytes of torch
without reinstalling them, while nothing of the checkout (no editable finder, no source folder) is on
its path: the script checks `vstore` imports from the new environment and finds its migrations and SQL
inside the installed package.

usage: .venv/bin/python .ci/wheel_check.py [--keep]   (run with the test environment's python)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "coco-sample"
TIMEOUT = 300  # seconds for any one command (a cold torch import on a busy machine takes tens)

# `--help` of every command (from the installed CLI itself: a command added later is covered without a
# change), in one process: a process per command costs a python start-up and the CLI's imports each.
HELP_OF_EVERY_COMMAND = """
import contextlib, io, json, typer
from vstore.cli import app, main
def walk(command, path):
    yield path
    if hasattr(command, "commands"):  # a group (typer may vendor its own click: no isinstance)
        for name, sub in sorted(command.commands.items()):
            if not sub.hidden:
                yield from walk(sub, path + [name])
paths, bad = list(walk(typer.main.get_command(app), [])), []
for path in paths:
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        code = main([*path, "--help"])
    if code != 0 or "Usage" not in shown.getvalue():
        bad.append({"command": " ".join(path), "code": code, "shown": shown.getvalue()[-400:]})
print(json.dumps({"commands": len(paths), "bad": bad}))
"""

WHERE_FROM = """
import json, vstore, vstore.resources as r
print(json.dumps({"vstore": vstore.__file__, "alembic": str(r.alembic_dir()), "sql": str(r.sql_dir())}))
"""


STARTED = time.monotonic()


def step(message: str) -> None:
    print(f"wheel-check: {message} [{time.monotonic() - STARTED:.0f} s]", file=sys.stderr, flush=True)


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise SystemExit(
            f"wheel-check: FAILED ({done.returncode}): {' '.join(command)}\n{done.stdout}\n{done.stderr}"
        )
    return done


def build_wheel(dist: Path) -> Path:
    """`pip wheel --no-deps`: first with the build tools already here (offline), else pip's isolated build
    (a venv's own setuptools may be too old for pyproject.toml or lack bdist_wheel)."""
    command = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)]
    offline = subprocess.run(
        [*command, "--no-build-isolation"], capture_output=True, text=True, timeout=TIMEOUT
    )
    if offline.returncode != 0:
        run(command)
    (wheel,) = dist.glob("vstore-*.whl")
    return wheel


def fresh_environment(venv: Path, wheel: Path) -> Path:
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])  # this pip installs into it (--python)
    python = venv / "bin" / "python"
    site = run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip()
    dependencies = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    (Path(site) / "_test_environment_deps.pth").write_text("\n".join(dependencies) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index"]
    run([*pip, str(wheel)])
    return python


def check_installed(python: Path, venv: Path, env: dict[str, str], work: Path) -> None:
    where = json.loads(run([str(python), "-c", WHERE_FROM], env=env, cwd=work).stdout)
    package = Path(where["vstore"]).resolve().parent
    for key in ("vstore", "alembic", "sql"):
        if not Path(where[key]).resolve().is_relative_to(venv.resolve()):
            raise SystemExit(f"wheel-check: FAILED: {key} comes from {where[key]}, not the installed wheel")
    for folder in ("train", "_alembic/versions", "_sql/api", "_sql/queries", "encode/model_configs"):
        if not (package / folder).is_dir():
            raise SystemExit(f"wheel-check: FAILED: the wheel has no vstore/{folder}")


def check_help(vstore: Path, python: Path, env: dict[str, str], work: Path) -> int:
    root = run([str(vstore), "--help"], env=env, cwd=work).stdout  # the console script itself
    if "Usage" not in root:
        raise SystemExit(f"wheel-check: FAILED: `vstore --help` printed no usage:\n{root}")
    shown = json.loads(run([str(python), "-c", HELP_OF_EVERY_COMMAND], env=env, cwd=work).stdout)
    if shown["bad"]:
        raise SystemExit(f"wheel-check: FAILED: --help of {json.dumps(shown['bad'], indent=1)}")
    return int(shown["commands"])


def json_of(vstore: Path, env: dict[str, str], work: Path, *args: str) -> Any:
    return json.loads(run([str(vstore), *args, "--json"], env=env, cwd=work).stdout)


def check_serve(vstore: Path, env: dict[str, str], work: Path) -> dict[str, Any]:
    process = subprocess.Popen(
        [str(vstore), "serve", "--port", "0"],
        env=env,
        cwd=work,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        deadline, lines, url = time.monotonic() + TIMEOUT, [], None
        while url is None and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"(http://127\.0\.0\.1:\d+/)", line)
            url = found.group(1) if found else None
        if url is None:
            raise SystemExit("wheel-check: FAILED: vstore serve printed no address:\n" + "".join(lines))
        with urllib.request.urlopen(url + "health", timeout=60) as response:
            return json.load(response)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def check_wings(vstore: Path, env: dict[str, str], work: Path) -> None:
    init = json_of(vstore, env, work, "init", "--model", "vstore-tiny", "--pretrained", "random")
    step(f"init: {init}")
    ingest = json_of(vstore, env, work, "ingest", str(SAMPLE), "--workers", "0")
    assert isinstance(ingest, dict), ingest
    step(f"ingest: {ingest.get('images_encoded', ingest)} images encoded")
    hits = run([str(vstore), "search", "a red circle", "-k", "3", "--json"], env=env, cwd=work).stdout
    if len(hits.splitlines()) != 3:
        raise SystemExit(f"wheel-check: FAILED: search gave no 3 hits:\n{hits}")
    json_of(vstore, env, work, "datasets")
    json_of(vstore, env, work, "db", "status")
    run([str(vstore), "index", "status"], env=env, cwd=work)
    compare = work / "compare.json"
    run(
        [str(vstore), "compare", "--queries", "4", "-k", "3", "--methods", "pgvector-exact,faiss-flat",
         "--repeats", "1", "--out", str(compare)],
        env=env, cwd=work,
    )  # fmt: skip
    step(f"compare: {len(json.loads(compare.read_text()))} rows")
    scores = work / "eval.json"
    run(
        [
            str(vstore),
            "eval",
            "--methods",
            "exact-numpy,pgvector-exact",
            "--queries",
            "5",
            "--out",
            str(scores),
        ],
        env=env,
        cwd=work,
    )
    step(f"eval: {sorted(json.loads(scores.read_text()))}")
    out = work / "finetune"
    trained = json_of(
        vstore,
        env,
        work,
        "finetune",
        "--epochs",
        "1",
        "--batch-size",
        "64",
        "--device",
        "cpu",
        "--out",
        str(out),
    )
    assert isinstance(trained, dict) and trained.get("steps_done") == 1, trained
    step(f"finetune: {trained['steps_done']} step, {out / 'model.pt'}")
    switched = json_of(vstore, env, work, "reembed", "--pretrained", str(out), "--device", "cpu")
    assert isinstance(switched, dict), switched
    step(f"reembed: {switched.get('images')} images")
    health = check_serve(vstore, env, work)
    if health.get("counts", {}).get("images") != 10:
        raise SystemExit(f"wheel-check: FAILED: /health of vstore serve: {health}")
    step(f"serve /health: {health.get('model')}, {health.get('counts')}")


def main() -> int:
    keep = "--keep" in sys.argv[1:]
    scratch = Path(tempfile.mkdtemp(prefix="vstore-wheel-"))
    venv, work, home = scratch / "venv", scratch / "work", scratch / "home"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSTORE_", "PYTHON"))}
    env.update(VSTORE_HOME=str(home), VSTORE_THREADS="1", PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")
    vstore = venv / "bin" / "vstore"
    try:
        wheel = build_wheel(scratch / "dist")
        step(f"built {wheel.name}")
        python = fresh_environment(venv, wheel)
        check_installed(python, venv, env, work)
        step("installed non-editable: vstore, its migrations and SQL come from the wheel")
        step(f"--help of {check_help(vstore, python, env, work)} commands")
        check_wings(vstore, env, work)
    finally:
        if (home / "pg").exists():
            subprocess.run([str(vstore), "db", "stop"], env=env, cwd=work, capture_output=True, timeout=120)
        if keep:
            step(f"kept {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
    step("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
