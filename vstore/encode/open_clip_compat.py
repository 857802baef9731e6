"""The one place vstore touches open_clip's private internals (DESIGN: private internals of a dependency
only behind an adapter, with a test that fails when they change: tests/test_open_clip_compat.py).

`weight_file_candidates` is open_clip's `pretrained._get_safe_alternatives` (which files a hub download
tries: the .safetensors twin first), plus the file itself. When a later open_clip drops or renames the
private function, vstore falls back to the rule it implemented in 3.x, so a warm cache is still found;
the guard test then fails and names the change to review.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

PRIVATE_NAME = "_get_safe_alternatives"  # in open_clip.pretrained (open_clip_torch 2.2x-3.x)


def private_safe_alternatives() -> Callable[[str], Iterable[str]] | None:
    """open_clip's private function, or None when this open_clip has none."""
    from open_clip import pretrained

    found = getattr(pretrained, PRIVATE_NAME, None)
    return found if callable(found) else None


def fallback_safe_alternatives(filename: str) -> list[str]:
    """open_clip 3.x's rule: open_clip_pytorch_model.bin -> open_clip_model.safetensors; X.bin/X.pth ->
    X.safetensors."""
    from open_clip.constants import HF_SAFE_WEIGHTS_NAME, HF_WEIGHTS_NAME

    if filename == HF_WEIGHTS_NAME:
        return [HF_SAFE_WEIGHTS_NAME]
    if filename.endswith((".bin", ".pth")):
        return [filename[:-4] + ".safetensors"]
    return []


def weight_file_candidates(filename: str) -> list[str]:
    """The files of a hub repository that hold `filename`'s weights, in the order open_clip tries them."""
    private = private_safe_alternatives()
    alternatives = list(private(filename)) if private is not None else fallback_safe_alternatives(filename)
    return [*alternatives, filename]
