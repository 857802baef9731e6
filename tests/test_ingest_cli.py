"""`vstore ingest` from the command line: exit codes, JSON, and a SIGKILL in the middle of a run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from tests import imagegen
from tests.pause import child_env, wait_until_paused
from vstore.cli import main
from vstore.db.connect import connection


def _env(monkeypatch, settings) -> None:
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))
    for name in ("VSTORE_MODEL", "VSTORE_PRETRAINED", "VSTORE_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)


def test_cli_exit_code_is_1_when_a_file_failed_and_json_lists_it(settings, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, settings)
    imagegen.save_jpeg(tmp_path / "d" / "good.jpg", 0)
    (tmp_path / "d" / "bad.jpg").write_bytes(b"")
    assert main(["ingest", str(tmp_path / "d"), "--workers", "0", "--json"]) == 1
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["added"] == 1 and report["failed"] == [
        {"path": "bad.jpg", "reason": "empty file (0 bytes)"}
    ]
    assert "1 file(s) failed" in captured.err


def test_a_manifest_report_speaks_of_rows_and_names_the_missing_file(settings, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, settings)
    imagegen.save_jpeg(tmp_path / "img" / "a.jpg", 0)
    (tmp_path / "m.csv").write_text("path,caption\nimg/a.jpg,a square\nimg/gone.jpg,lost\n")
    assert main(["ingest", str(tmp_path / "m.csv"), "--workers", "0"]) == 0
    err = capsys.readouterr().err
    assert "1 manifest rows naming a missing file skipped" in err and "annotation" not in err
    assert "manifest rows name files that are not on disk (skipped): img/gone.jpg" in err


def test_cli_exit_code_is_0_and_summary_on_stderr_when_all_is_well(settings, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, settings)
    imagegen.make_coco(tmp_path / "coco", n=3, uncaptioned=1)
    assert main(["ingest", str(tmp_path / "coco"), "--split", "val2017", "--batch-size", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "4 added" in captured.err and "1 images without captions" in captured.err


def test_cli_stderr_to_a_file_gets_one_notice_each_and_no_library_noise(
    settings, tmp_path, monkeypatch, capfd
):
    # stderr here is not a terminal: no progress redraws ('\r'), one random-weights notice, no bare
    # "warnings.warn(" line from PIL (the palette image with transparency triggers one), no Faiss chatter.
    _env(monkeypatch, settings)
    imagegen.make_odd_images(tmp_path / "odd")
    assert main(["ingest", str(tmp_path / "odd"), "--workers", "1", "--batch-size", "4"]) == 0
    assert main(["eval", "--methods", "faiss-ivf,faiss-ivfpq", "--k", "1", "--recall-k", "1"]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err
    assert err.count("has random weights") == 2  # once per command: ingest, eval
    assert "warnings.warn" not in err and "Warning" not in err
    assert "WARNING clustering" not in err
    assert "s rebuilding indexes" in err


def test_cli_refuses_another_model_with_a_clear_message(settings, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, settings)
    imagegen.save_jpeg(tmp_path / "d" / "a.jpg", 0)
    assert main(["ingest", str(tmp_path / "d"), "--model", "ViT-B-32", "--pretrained", "random"]) == 1
    assert "vstore-tiny/random" in capsys.readouterr().err


def _count(settings, sql: str) -> int:
    with connection(settings) as conn:
        return int(conn.execute(sql).fetchone()[0])


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_gives_exactly_one_row_per_image_and_caption(settings, tmp_path):
    root = tmp_path / "coco"
    n = 120
    imagegen.make_coco(root, n=n, size=(160, 120))
    captions = sum(1 + i % 5 for i in range(n))
    env = child_env(settings)
    command = [sys.executable, "-m", "vstore.cli", "ingest", str(root), "--batch-size", "2", "--workers", "1"]
    # the ingest waits after its 3rd committed batch (6 images): the SIGKILL always lands mid-ingest
    paused = child_env(settings, pause="ingest.batch:3")
    process = subprocess.Popen(command, env=paused, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_paused(process, settings.home, "ingest.batch")
    process.send_signal(signal.SIGKILL)
    process.wait()
    partial = _count(settings, "SELECT count(*) FROM images")
    assert partial == 6

    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    assert rerun.returncode == 0, rerun.stderr
    assert _count(settings, "SELECT count(*) FROM images") == n
    assert _count(settings, "SELECT count(DISTINCT path) FROM images WHERE embedding IS NOT NULL") == n
    assert _count(settings, "SELECT count(*) FROM captions") == captions
    assert (
        _count(settings, "SELECT count(*) FROM (SELECT DISTINCT image_id, source_id FROM captions) c")
        == captions
    )
    assert f"{partial} unchanged" in rerun.stderr
