"""`vstore bench models`: the model table of the ImageNet DET study, measured through vstore's encoder."""

from __future__ import annotations

import json

import pytest

from vstore.bench.models import bench_model, parse_models
from vstore.errors import ConfigError


def test_counts_the_parameters_and_weighs_the_fp32_weights(tiny_encoder):
    row = bench_model("vstore-tiny", "random", batch=2, repeats=1)
    parameters = sum(p.numel() for p in tiny_encoder._model.parameters())  # counted independently
    assert row.parameters == parameters
    assert (row.dim, row.image_size) == (32, 32)
    # fp32 weights: 4 bytes a parameter, plus the state dict's keys and buffers (well under 1 MB here).
    assert 4 * parameters <= row.size_bytes < 4 * parameters + 1_000_000
    assert row.images_per_s > 0 and row.texts_per_s > 0 and row.peak_rss_bytes > row.size_bytes


def test_model_names_are_parsed_and_bad_options_refused():
    assert parse_models("ViT-B-32, RN50,ViT-B-32") == ["ViT-B-32", "RN50"]
    with pytest.raises(ConfigError):
        parse_models(" , ")
    with pytest.raises(ConfigError):
        bench_model("vstore-tiny", batch=0)
    with pytest.raises(ConfigError, match="no model named"):
        bench_model("no-such-model")


@pytest.mark.slow
def test_cli_runs_each_model_in_its_own_process_and_prints_json(capsys):
    from vstore.cli import main

    assert (
        main(["bench", "models", "--models", "vstore-tiny", "--batch", "2", "--repeats", "1", "--json"]) == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert row["model"] == "vstore-tiny" and row["dim"] == 32 and row["parameters"] > 0
