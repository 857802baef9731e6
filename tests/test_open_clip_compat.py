"""Guard of vstore/encode/open_clip_compat.py: open_clip's private `_get_safe_alternatives` is still there
and still answers what vstore's fallback assumes. When this fails, open_clip changed under vstore: review
encode/open_clip_compat.py (and encode/weights.py, which finds cached weights with it)."""

from __future__ import annotations

import inspect

import pytest
from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

from vstore.encode.open_clip_compat import (
    fallback_safe_alternatives,
    private_safe_alternatives,
    weight_file_candidates,
)

NAMES = [HF_WEIGHTS_NAME, "open_clip_model.safetensors", "model.bin", "weights.pth", "config.json"]


def test_open_clip_still_has_the_private_function_with_one_filename_parameter():
    private = private_safe_alternatives()
    assert private is not None, "open_clip.pretrained._get_safe_alternatives is gone"
    assert list(inspect.signature(private).parameters) == ["filename"]


@pytest.mark.parametrize("filename", NAMES)
def test_the_private_function_answers_what_the_fallback_assumes(filename):
    private = private_safe_alternatives()
    assert private is not None
    assert list(private(filename)) == fallback_safe_alternatives(filename)


def test_candidates_try_the_safetensors_twin_before_the_file_itself():
    assert weight_file_candidates(HF_WEIGHTS_NAME) == [HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME]
    assert weight_file_candidates("config.json") == ["config.json"]


def test_without_the_private_function_the_fallback_gives_the_same_candidates(monkeypatch):
    from open_clip import pretrained

    expected = {name: weight_file_candidates(name) for name in NAMES}
    monkeypatch.delattr(pretrained, "_get_safe_alternatives")
    assert private_safe_alternatives() is None
    assert {name: weight_file_candidates(name) for name in NAMES} == expected
