"""`vstore bench models`: the ImageNet DET study's model table (its table 5.1) on this machine.

For each open_clip model: parameters, size of its fp32 weights on disk, embedding dimension, input size,
images/s and texts/s through vstore's own encoder (same batch and threads for every model), and the peak
resident memory of the process that ran it. `--pretrained random` measures the architecture (the same
FLOPs as the trained model) where no weights can be downloaded. Each model runs in a fresh process (spawn),
so one model's memory is not counted in the next one's peak.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from vstore.errors import ConfigError

DEFAULT_MODELS = ("ViT-B-32", "ViT-B-16", "ViT-L-14", "RN50", "RN50x4", "ViT-S-32")
CAPTION = "a photo of a small dog playing with a red ball on the grass number {i}"


@dataclass(frozen=True)
class ModelBench:
    model: str
    pretrained: str
    dim: int
    parameters: int
    size_bytes: int  # the weights serialised as a PyTorch state dict (fp32), what a checkpoint weighs
    image_size: int
    images_per_s: float
    texts_per_s: float
    peak_rss_bytes: int  # peak resident memory of the process that loaded and ran this model
    batch: int
    threads: int
    device: str


def parse_models(text: str | Sequence[str] | None) -> list[str]:
    items = [text] if isinstance(text, str) else list(text or DEFAULT_MODELS)
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    if not names:
        raise ConfigError("--models needs at least one open_clip model name, e.g. ViT-B-32,RN50.")
    return list(dict.fromkeys(names))


def _image_size(model: Any) -> int:
    size = getattr(getattr(model, "visual", None), "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def bench_model(
    name: str,
    pretrained: str = "random",
    *,
    batch: int = 16,
    repeats: int = 3,
    threads: int = 1,
    device: str = "cpu",
) -> ModelBench:
    """Measure one model in this process (bench_models runs each in its own process)."""
    import resource

    import torch

    from vstore.encode.encoder import load_encoder, resolve_spec

    if batch < 1 or repeats < 1:
        raise ConfigError("--batch and --repeats must be at least 1.")
    encoder: Any = load_encoder(resolve_spec(name, pretrained), device=device, threads=threads)
    model = encoder._model
    parameters = int(sum(p.numel() for p in model.parameters()))
    buffer = io.BytesIO()
    torch.save({k: v.float() for k, v in model.state_dict().items()}, buffer)
    size = _image_size(model)
    pixels = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    texts = [CAPTION.format(i=i) for i in range(batch)]

    def rate(step: Callable[[], Any]) -> float:
        step()  # warm-up: allocations, kernels, lazy initialisation
        started = time.perf_counter()
        for _ in range(repeats):
            step()
        return batch * repeats / (time.perf_counter() - started)

    images_per_s = rate(lambda: encoder.encode_images(pixels))
    texts_per_s = rate(lambda: encoder.encode_texts(texts))
    return ModelBench(
        model=name,
        pretrained=pretrained,
        dim=int(encoder.dim),
        parameters=parameters,
        size_bytes=len(buffer.getvalue()),
        image_size=size,
        images_per_s=images_per_s,
        texts_per_s=texts_per_s,
        peak_rss_bytes=int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024,  # Linux: KiB
        batch=batch,
        threads=threads,
        device=encoder.device,
    )


def _bench_in_child(kwargs: dict[str, Any]) -> dict[str, Any]:
    return asdict(bench_model(**kwargs))


def bench_models(
    names: Sequence[str],
    pretrained: str = "random",
    *,
    batch: int = 16,
    repeats: int = 3,
    threads: int = 1,
    device: str = "cpu",
    progress: Callable[[str], None] | None = None,
) -> list[ModelBench]:
    """`bench_model` for each name, each in a fresh spawned process (clean peak memory, no state shared)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    results = []
    context = multiprocessing.get_context("spawn")
    for name in parse_models(names):
        if progress:
            progress(f"{name}/{pretrained}: batch {batch} x {repeats}, {threads} thread(s)")
        kwargs = dict(
            name=name, pretrained=pretrained, batch=batch, repeats=repeats, threads=threads, device=device
        )
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            results.append(ModelBench(**pool.submit(_bench_in_child, kwargs).result()))
    return results


def format_models(rows: Sequence[ModelBench]) -> str:
    header = ("model", "dim", "params_M", "size_MB", "input_px", "images/s", "texts/s", "peak_MB")
    lines = [header] + [
        (
            f"{r.model}/{r.pretrained}",
            str(r.dim),
            f"{r.parameters / 1e6:.1f}",
            f"{r.size_bytes / 1e6:.0f}",
            str(r.image_size),
            f"{r.images_per_s:.1f}",
            f"{r.texts_per_s:.1f}",
            f"{r.peak_rss_bytes / 1e6:.0f}",
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(line, widths, strict=True))
        )
        for line in lines
    )
