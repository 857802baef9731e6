"""Faults that must end in a recorded failure or one `Error:` line, never a hang or a traceback: a decode
worker killed mid-ingest, the server dropping the ingest's connection, oversized query images, and a
first use without network."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import replace

import pytest

from tests import imagegen
from vstore.cli import main
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


def _env(monkeypatch, settings) -> None:
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))
    for name in ("VSTORE_MODEL", "VSTORE_PRETRAINED", "VSTORE_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)


def _errors(err: str) -> list[str]:
    """The error lines of stderr (progress and the tiny model's random-weights warning left out); a
    traceback would show as lines of its own."""
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("Error") or "rror:" in line]


def _pixel_bomb(path) -> None:
    """A small PNG whose header claims 20000x20000 pixels (400 Mpx): what a decompression bomb looks
    like to the decoder, without 1.2 GB of pixels on disk."""
    import struct
    import zlib

    imagegen.draw(0, (4, 4)).save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr : ihdr + 8] = struct.pack(">II", 20000, 20000)
    crc_at = ihdr + 13
    data[crc_at : crc_at + 4] = struct.pack(">I", zlib.crc32(bytes(data[ihdr - 4 : crc_at])))
    path.write_bytes(bytes(data))


@pytest.fixture
def photos(settings, tiny_encoder, tmp_path):
    for index in range(4):
        imagegen.save_jpeg(tmp_path / "photos" / f"{index}.jpg", index)
    ingest(settings, tmp_path / "photos", encoder=tiny_encoder)
    return tmp_path / "photos"


def test_search_by_a_20000_px_square_image_is_one_error_line(settings, photos, tmp_path, monkeypatch, capsys):
    _env(monkeypatch, settings)
    _pixel_bomb(tmp_path / "bomb.png")
    assert main(["search", "--image", str(tmp_path / "bomb.png")]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = _errors(captured.err)
    assert line.startswith("Error: ") and "pixel limit" in line and "resize" in line


def test_eval_with_a_20000_px_square_query_image_is_one_error_line(
    settings, photos, tmp_path, monkeypatch, capsys
):
    _env(monkeypatch, settings)
    _pixel_bomb(tmp_path / "bomb.png")
    (tmp_path / "queries.txt").write_text("a red circle\nbomb.png\n")
    args = ["eval", "--queries-file", str(tmp_path / "queries.txt"), "--methods", "exact-numpy"]
    assert main(args) == 1
    [line] = _errors(capsys.readouterr().err)
    assert line.startswith("Error: ") and "pixel limit" in line and "bomb.png" in line


def test_the_server_dropping_the_ingest_is_one_error_line_and_the_rerun_loses_nothing(
    settings, tmp_path, monkeypatch, capsys
):
    _env(monkeypatch, settings)
    for index in range(20):
        imagegen.save_jpeg(tmp_path / "photos" / f"{index:02}.jpg", index)
    with connection(settings, autocommit=True) as conn:
        # Once the first batch (8 rows) is committed, the backend serving the ingest terminates itself
        # in the middle of the next one: the client sees what a server shutdown sends (AdminShutdown).
        conn.execute(
            """
            CREATE FUNCTION public.test_shutdown() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT count(*) FROM public.images) > 8 THEN
                    PERFORM pg_terminate_backend(pg_backend_pid());
                END IF;
                RETURN NULL;
            END $$;
            CREATE TRIGGER test_shutdown AFTER INSERT ON public.images
                FOR EACH STATEMENT EXECUTE FUNCTION public.test_shutdown();
            """
        )
    args = ["ingest", str(tmp_path / "photos"), "--batch-size", "8", "--workers", "0"]
    assert main(args) == 1
    [line] = _errors(capsys.readouterr().err)
    assert line.startswith("Error: lost the connection to PostgreSQL") and "re-run" in line
    with connection(settings, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM images").fetchone() == (8,)  # the committed batch
        conn.execute("DROP TRIGGER test_shutdown ON public.images")
    assert main([*args, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["added"], report["unchanged"]) == (12, 8)
    with connection(settings, autocommit=True) as conn:
        assert conn.execute("SELECT count(*) FROM images WHERE status = 'ok'").fetchone() == (20,)


@pytest.fixture
def hf_cache(tmp_path, monkeypatch):
    """An empty Hugging Face cache, in this process (huggingface_hub reads HF_HOME once, at import)."""
    import huggingface_hub.constants

    hub = tmp_path / "hf" / "hub"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    return hub


def _warm(hub) -> None:
    """Put (dummy) ViT-B-32/openai weights where open_clip's hf_hub_download would find them."""
    repo = hub / "models--timm--vit_base_patch32_clip_224.openai"
    revision = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision)
    (repo / "snapshots" / revision).mkdir(parents=True)
    (repo / "snapshots" / revision / "open_clip_model.safetensors").write_bytes(b"weights")


def _check_offline_refusal(stderr: str, settings) -> None:
    [line] = _errors(stderr)
    assert line.startswith("Error: the weights of ViT-B-32/openai are not in the Hugging Face cache")
    for fix in ("--pretrained random", "--pretrained /path/to/checkpoint.pt", "warm Hugging Face cache"):
        assert fix in line
    with connection(settings, autocommit=True, vector=False) as conn:
        assert conn.execute("SELECT to_regclass('public.embedding_model')").fetchone() == (None,)


def test_init_offline_without_cached_weights_fails_and_records_nothing(
    empty_settings, hf_cache, monkeypatch, capsys
):
    _env(monkeypatch, empty_settings)
    assert main(["init"]) == 1
    _check_offline_refusal(capsys.readouterr().err, empty_settings)
    assert main(["init", "--pretrained", "random", "--model", "vstore-tiny"]) == 0  # the first fix works


def test_first_ingest_offline_without_cached_weights_fails_and_records_nothing(
    empty_settings, hf_cache, tmp_path, monkeypatch, capsys
):
    _env(monkeypatch, empty_settings)
    imagegen.save_jpeg(tmp_path / "photos" / "a.jpg", 0)
    assert main(["ingest", str(tmp_path / "photos")]) == 1
    _check_offline_refusal(capsys.readouterr().err, empty_settings)


def test_init_offline_with_the_weights_in_the_hugging_face_cache_records_the_model(
    empty_settings, hf_cache, monkeypatch, capsys
):
    _env(monkeypatch, empty_settings)
    _warm(hf_cache)
    assert main(["init", "--json"]) == 0
    recorded = json.loads(capsys.readouterr().out)
    assert recorded == {"model": "ViT-B-32", "pretrained": "openai", "dim": 512, "storage": "vector"}


@pytest.mark.slow
def test_a_new_user_offline_gets_the_refusal_from_a_fresh_process(empty_settings, tmp_path):
    """The same as a new user meets it: a fresh process, HF_HOME set before huggingface_hub loads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VSTORE_", "HF_"))}
    env.update(VSTORE_DATABASE_URL=empty_settings.database_url, HF_HOME=str(tmp_path / "hf"))
    env.update(VSTORE_HOME=str(empty_settings.home))
    done = subprocess.run(
        [sys.executable, "-m", "vstore", "init"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 1
    _check_offline_refusal(done.stderr, empty_settings)
