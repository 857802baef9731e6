"""`vstore finetune` on the tiny model and generated captioned shapes: the loss goes down, held-out
retrieval beats chance after training, and an interrupted run resumed from its checkpoint ends with the
very weights of an uninterrupted one."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from tests import imagegen
from vstore.cli import main
from vstore.config import Settings
from vstore.errors import ConfigError, NotFound
from vstore.ingest.pipeline import ingest
from vstore.train.data import split_pairs
from vstore.train.finetune import Recipe, finetune


def shapes(settings: Settings, tmp_path: Path, tiny_encoder, n: int, **kwargs) -> Settings:
    """Ingest n generated captioned shapes; torch on one thread (the machine's cores are shared)."""
    imagegen.make_captioned_shapes(tmp_path / "shapes", n, **kwargs)
    splits = sorted(kwargs["splits"]) if "splits" in kwargs else None
    ingest(settings, tmp_path / "shapes", split=splits, encoder=tiny_encoder)
    return dataclasses.replace(settings, threads=1)


def _weights(path: Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_loss_decreases_over_a_few_steps_on_a_fixed_batch(settings, tmp_path, tiny_encoder):
    current = shapes(settings, tmp_path, tiny_encoder, 10)
    # 8 training images and a batch of 8: every step sees the same images
    result = finetune(
        current, tmp_path / "run", Recipe(epochs=12, lr=1e-3, batch_size=8, weight_decay=0.0), holdout=0.2
    )
    losses = [h["loss"] for h in json.loads((tmp_path / "run" / "history.json").read_text())["steps"]]
    assert result.split["train_images"] == 8 and len(losses) == 12
    assert sum(losses[-3:]) / 3 < losses[0] - 0.1


def test_run_directory_holds_weights_open_clip_loads_recipe_scores_and_source(
    settings, tmp_path, tiny_encoder
):
    import open_clip

    from vstore.encode.encoder import create_model

    current = shapes(settings, tmp_path, tiny_encoder, 12)
    out = tmp_path / "run"
    result = finetune(current, out, Recipe(epochs=1, lr=1e-3, batch_size=4), holdout=0.25)
    assert {p.name for p in out.iterdir()} == {
        "model.pt", "recipe.json", "database.json", "scores.json", "history.json", "loss.png"
    }  # fmt: skip
    model, _, _ = open_clip.create_model_and_transforms("vstore-tiny", pretrained=str(out / "model.pt"))
    trained = _weights(out / "model.pt")
    start, _, _ = create_model(tiny_encoder.spec)
    assert all(
        (model.state_dict()[k] == v).all() for k, v in trained.items()
    )  # open_clip loaded exactly these weights
    assert any((start.state_dict()[k] != v).any() for k, v in trained.items())  # and training changed them
    scores = json.loads((out / "scores.json").read_text())
    assert set(scores) == {"before", "after", "gain"}
    for key in ("caption_image.R@1", "caption_image.R@5", "image_caption.R@10", "caption_image.precision@3"):
        assert 0.0 <= scores["after"][key] <= 1.0
    source = json.loads((out / "database.json").read_text())
    assert source["counts"]["images"] == 12 and len(source["split"]["heldout_image_ids"]) == 3
    assert "password" not in source["url"]
    assert json.loads((out / "recipe.json").read_text())["recipe"]["lr"] == 1e-3
    assert result.model_path == out / "model.pt"


def test_defaults_are_the_clip_recipe():
    recipe = Recipe()
    assert (recipe.lr, recipe.betas, recipe.eps, recipe.weight_decay, recipe.batch_size) == (
        1e-5, (0.9, 0.98), 1e-6, 0.2, 64
    )  # fmt: skip


def test_interrupted_then_resumed_run_ends_with_the_weights_of_an_uninterrupted_run(
    settings, tmp_path, tiny_encoder
):
    import torch

    current = shapes(settings, tmp_path, tiny_encoder, 12)
    recipe = Recipe(epochs=3, lr=1e-3, batch_size=4, seed=3)
    whole = finetune(current, tmp_path / "whole", recipe, holdout=0.2)
    asked = {"n": 0}

    def stop_after_three_steps() -> bool:
        asked["n"] += 1
        return asked["n"] == 3

    part = finetune(current, tmp_path / "part", recipe, holdout=0.2, stop=stop_after_three_steps)
    assert part.interrupted and part.steps_done == 3 and (tmp_path / "part" / "resume.pt").is_file()
    assert not (tmp_path / "part" / "model.pt").exists()
    with pytest.raises(ConfigError, match="--resume"):
        finetune(current, tmp_path / "part", recipe, holdout=0.2)
    resumed = finetune(current, tmp_path / "part", resume=True)

    assert not resumed.interrupted and resumed.steps_done == whole.steps_total == 6
    a, b = _weights(tmp_path / "whole" / "model.pt"), _weights(tmp_path / "part" / "model.pt")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.scores["after"] == whole.scores["after"]
    assert not (tmp_path / "part" / "resume.pt").exists()
    with pytest.raises(NotFound, match="finished"):
        finetune(current, tmp_path / "part", resume=True)


def test_held_out_split_is_by_image_seeded_and_disjoint(settings, tmp_path, tiny_encoder):
    from vstore.db.connect import connection
    from vstore.train.data import load_pairs

    shapes(settings, tmp_path, tiny_encoder, 20, splits={"train": 15, "val": 5})
    with connection(settings) as conn:
        pairs = load_pairs(conn)
    a, b = split_pairs(pairs, holdout=0.3, seed=1), split_pairs(pairs, holdout=0.3, seed=1)
    assert [i.image_id for i in a.heldout] == [i.image_id for i in b.heldout] and len(a.heldout) == 6
    assert not {i.image_id for i in a.heldout} & {i.image_id for i in a.train}
    assert [i.image_id for i in split_pairs(pairs, holdout=0.3, seed=2).heldout] != [
        i.image_id for i in a.heldout
    ]
    by_split = split_pairs(pairs, eval_split="val")
    assert {i.split for i in by_split.heldout} == {"val"} and {i.split for i in by_split.train} == {"train"}
    with pytest.raises(NotFound, match="train, val"):
        split_pairs(pairs, eval_split="test")
    with pytest.raises(ConfigError):
        split_pairs(pairs, holdout=1.5)


def test_cli_finetune_json_and_bad_options(settings, tmp_path, tiny_encoder, monkeypatch, capsys):
    shapes(settings, tmp_path, tiny_encoder, 10)
    monkeypatch.setenv("VSTORE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("VSTORE_HOME", str(settings.home))
    monkeypatch.setenv("VSTORE_THREADS", "1")
    out = tmp_path / "cli-run"
    code = main(
        ["finetune", "--epochs", "1", "--batch-size", "4", "--lr", "1e-3", "--out", str(out), "--json"]
    )
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model_path"] == str(out / "model.pt") and "after" in report["scores"]
    assert main(["finetune", "--holdout", "0.1", "--eval-split", "val"]) == 2
    assert main(["finetune", "--lock-image", "--lock-text", "--out", str(tmp_path / "x")]) == 2
    assert main(["finetune", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "Error: give one of" in err and "Traceback" not in err


@pytest.mark.slow
def test_training_on_captioned_shapes_beats_chance_on_the_held_out_split(settings, tmp_path, tiny_encoder):
    current = shapes(settings, tmp_path, tiny_encoder, 120, colours=4)
    # 80 epochs: from random weights the loss sits at ln(batch) for ~100 steps before it falls, so a run that
    # stops near the end of that plateau passes or fails on float summation order (torch threads)
    result = finetune(
        current, tmp_path / "run", Recipe(epochs=80, lr=1e-3, batch_size=30, weight_decay=0.0), holdout=0.25
    )
    before, after = result.scores["before"], result.scores["after"]
    chance = after["chance.caption_image.R@5"]
    assert result.split["heldout_images"] == 30 and chance == pytest.approx(5 / 30)
    assert after["caption_image.R@5"] >= chance + 0.2
    assert after["caption_image.R@5"] >= before["caption_image.R@5"] + 0.15
    assert after["image_caption.R@5"] > before["image_caption.R@5"]


@pytest.mark.slow
def test_ctrl_c_saves_a_resumable_state_and_resume_finishes_the_run(settings, tmp_path, tiny_encoder):
    import signal
    import subprocess
    import sys

    from tests.pause import child_env, wait_until_paused

    shapes(settings, tmp_path, tiny_encoder, 40)
    env = child_env(settings, VSTORE_THREADS="1")
    out = tmp_path / "run"
    command = [sys.executable, "-m", "vstore.cli", "finetune", "--out", str(out), "--epochs", "8"]
    command += ["--batch-size", "4", "--lr", "1e-3"]
    # the run waits after its 3rd step for the Ctrl-C: it always lands mid-run
    paused = child_env(settings, pause="finetune.step:3", VSTORE_THREADS="1")
    process = subprocess.Popen(command, env=paused, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wait_until_paused(process, settings.home, "finetune.step")
    process.send_signal(signal.SIGINT)
    err = process.communicate(timeout=120)[1].decode()
    assert process.returncode == 130, err
    assert "continue with: vstore finetune --resume" in err and "Traceback" not in err
    assert (out / "resume.pt").is_file() and not (out / "model.pt").exists()

    import torch

    # Ctrl-C stops after the current step: the 3rd of 8 * 9 (36 training images, batches of 4)
    assert torch.load(out / "resume.pt", weights_only=True)["step"] == 3

    resumed = subprocess.run(
        [sys.executable, "-m", "vstore.cli", "finetune", "--resume", "--out", str(out), "--json"],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["steps_done"] == 8 * 9 and (out / "model.pt").is_file()
    history = json.loads((out / "history.json").read_text())["steps"]
    assert [h["step"] for h in history] == list(range(1, 8 * 9 + 1))
