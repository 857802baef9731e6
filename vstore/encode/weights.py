"""Can this machine get a model's weights? Asked before a database records its model: the record is for
good, so recording weights that cannot be had would leave every later ingest and text search waiting on a
download that never comes (about 52 s each, offline), on a database locked to a model it cannot load.

The local caches come first (the Hugging Face cache open_clip downloads into, or open_clip's own cache for
URL weights); only when the weights are not there is the network asked, with a short timeout.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from vstore.encode.encoder import ModelSpec
from vstore.errors import ModelLoadError

NETWORK_TIMEOUT_S = 3.0
_TRUE = ("1", "true", "yes", "on")


def _fixes(spec: ModelSpec) -> str:
    return (
        "Fix: --pretrained random (to try the pipeline; results are then meaningless), "
        "--pretrained /path/to/checkpoint.pt (a local open_clip checkpoint), or a warm Hugging Face cache "
        f"(load {spec.name}/{spec.pretrained} once with open_clip where there is network, then copy its "
        "HF_HOME here)."
    )


def _hf_cached(repo_and_file: str) -> bool:
    from huggingface_hub import try_to_load_from_cache
    from open_clip.constants import HF_WEIGHTS_NAME

    from vstore.encode.open_clip_compat import weight_file_candidates

    repo_id, filename = os.path.split(repo_and_file)
    filename = filename or HF_WEIGHTS_NAME
    for candidate in weight_file_candidates(filename):
        if isinstance(try_to_load_from_cache(repo_id, candidate), str):
            return True
    return False


def _reachable(host: str, port: int, timeout_s: float) -> bool:
    """A TCP connection to host:port within timeout_s (name resolution included, which socket timeouts
    do not bound: it runs in a thread that is abandoned when it takes too long)."""
    answer: list[bool] = []

    def attempt() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout_s).close()
            answer.append(True)
        except OSError:
            answer.append(False)

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return bool(answer and answer[0])


def _endpoint(cfg: dict, use_hub: bool) -> tuple[str, int]:
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    url = proxy or (os.environ.get("HF_ENDPOINT", "https://huggingface.co") if use_hub else cfg["url"])
    parts = urlsplit(url if "://" in url else f"http://{url}")
    return parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)


def check_weights_available(spec: ModelSpec, *, timeout_s: float = NETWORK_TIMEOUT_S) -> None:
    """Return when the weights of `spec` are in a local cache or their server answers; ModelLoadError
    (one line, the three fixes) otherwise. Random weights and checkpoint files need no check."""
    if spec.seeded_random or spec.checkpoint_sha256 is not None:
        return
    import open_clip
    from open_clip.pretrained import has_hf_hub

    cfg = open_clip.get_pretrained_cfg(spec.name, spec.pretrained)
    if not cfg or not (cfg.get("hf_hub") or cfg.get("url")):
        known = ", ".join(tag for name, tag in open_clip.list_pretrained() if name == spec.name) or "none"
        raise ModelLoadError(
            f"open_clip has no pretrained weights {spec.pretrained!r} for {spec.name} (known tags: {known}), "
            f"and {spec.pretrained!r} is not a checkpoint file. " + _fixes(spec)
        )
    use_hub = bool(cfg.get("hf_hub")) and has_hf_hub()  # what open_clip's download_pretrained prefers
    if use_hub and _hf_cached(cfg["hf_hub"]):
        return
    if not use_hub and (Path("~/.cache/clip").expanduser() / os.path.basename(cfg["url"])).is_file():
        return
    where = "the Hugging Face cache" if use_hub else "open_clip's cache (~/.cache/clip)"
    if use_hub and os.environ.get("HF_HUB_OFFLINE", "").lower() in _TRUE:
        raise ModelLoadError(
            f"the weights of {spec.label} are not in {where} and HF_HUB_OFFLINE is set. " + _fixes(spec)
        )
    host, port = _endpoint(cfg, use_hub)
    if not _reachable(host, port, timeout_s):
        raise ModelLoadError(
            f"the weights of {spec.label} are not in {where} and {host} cannot be reached from here "
            f"(no connection within {timeout_s:.0f} s). " + _fixes(spec)
        )
