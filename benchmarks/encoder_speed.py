"""Encoder speed, side by side in one run (`python -m benchmarks.ingest_bench encoder`): padding-free,
length-bucketed caption encoding vs open_clip's full-context encode_text; a whole `vstore ingest` (fresh
process, model load included) vs the model-only time at full context for the same images and captions;
an unchanged re-run of a 1,000-image folder; one short query's encode latency. See docs/ingest.md.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SUBJECTS = [
    "man",
    "woman",
    "young boy",
    "little girl",
    "dog",
    "cat",
    "group of people",
    "person",
    "giraffe",
    "zebra",
    "bus",
    "train",
    "plate of food",
    "kitchen",
    "bathroom",
    "skier",
    "surfer",
    "tennis player",
    "baseball player",
    "couple",
    "horse",
    "bird",
    "motorcycle",
]
ADJECTIVES = [
    "small",
    "large",
    "white",
    "black",
    "red",
    "old",
    "wooden",
    "crowded",
    "empty",
    "green",
    "yellow",
    "tall",
    "colorful",
    "young",
    "blue",
]
ACTIONS = [
    "standing next to",
    "sitting on",
    "riding",
    "holding",
    "walking down",
    "looking at",
    "parked in front of",
    "playing with",
    "laying on top of",
    "eating",
    "flying over",
]
OBJECTS = [
    "a table",
    "a street",
    "a field",
    "a bench",
    "a surfboard",
    "a kite",
    "a pizza",
    "a fence",
    "a wave",
    "a building",
    "a sidewalk",
    "a tree",
    "a window",
    "a couch",
    "a plate",
]
PLACES = [
    "in a park",
    "on a sunny day",
    "near the water",
    "in the city",
    "at night",
    "in a kitchen",
    "with a blue sky behind it",
    "while other people watch",
    "next to a busy road",
    "in front of a large white building with many windows",
]


def caption(rng: np.random.Generator) -> str:
    """A COCO-like caption: 8-20 words mostly (COCO's mean is ~10.5 words, ~14 tokens)."""
    article = "A" if rng.random() < 0.8 else "The"
    words = [article, str(rng.choice(ADJECTIVES)), str(rng.choice(SUBJECTS)), str(rng.choice(ACTIONS))]
    words.append(str(rng.choice(OBJECTS)))
    for _ in range(int(rng.choice([0, 1, 1, 2]))):
        words.append(str(rng.choice(PLACES)))
    return " ".join(words) + ("." if rng.random() < 0.6 else "")


def make_coco_folder(root: Path, images: int, seed: int = 0) -> tuple[Path, list[str]]:
    """root/val2017/*.jpg (640x480, vstore/bench/imagegen.py pictures), annotations with 1-5 captions each."""
    from vstore.bench import imagegen

    rng = np.random.default_rng(seed)
    entries: list[dict] = []
    annotations: list[dict] = []
    texts: list[str] = []
    for i in range(images):
        image_id = 1 + i
        name = f"{image_id:012d}.jpg"
        path = root / "val2017" / name
        if not path.exists():
            imagegen.save_jpeg(path, i, (640, 480), seed=i // 40)
        entries.append({"id": image_id, "file_name": name, "width": 640, "height": 480})
        for _ in range(int(rng.integers(1, 6))):
            text = caption(rng)
            texts.append(text)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "caption": text})
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    data = {"images": entries, "annotations": annotations}
    (root / "annotations" / "captions_val2017.json").write_text(json.dumps(data))
    return root, texts


def _time(fn: Any) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def captions_per_s(encoder: Any, texts: list[str], batch: int, repeats: int) -> dict[str, Any]:
    """Padding-free + length buckets (encoder.encode_texts) vs encode_text on full-context batches of the
    same size in source order, interleaved per repeat; also the max abs difference before normalising."""
    import torch

    model, tokenizer = encoder._model, encoder._tokenizer
    encoder.text.batch_size = batch

    def full_context() -> np.ndarray:
        parts = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch):
                parts.append(model.encode_text(tokenizer(texts[start : start + batch])).numpy())
        return np.concatenate(parts)

    diff = float(np.abs(encoder.text.encode(texts) - full_context()).max())
    fast, full = [], []
    for _ in range(repeats):
        fast.append(len(texts) / _time(lambda: encoder.encode_texts(texts)))
        full.append(len(texts) / _time(full_context))
    tokens = tokenizer(texts)
    real = int((tokens.argmax(dim=-1) + 1).sum())
    return {
        "captions": len(texts),
        "batch_size": batch,
        "mean_tokens": round(real / len(texts), 1),
        "padding_free_captions_per_s": round(statistics.median(fast), 1),
        "full_context_captions_per_s": round(statistics.median(full), 1),
        "speedup": round(statistics.median(fast) / statistics.median(full), 2),
        "max_abs_diff": diff,
        "runs": {"padding_free": [round(r, 1) for r in fast], "full_context": [round(r, 1) for r in full]},
    }


def model_only_full_context_s(encoder: Any, images: int, texts: list[str], batch: int) -> dict[str, float]:
    """Seconds the model alone takes for `images` images (preprocessed tensors, batches of `batch`) and
    `texts` at full context (encode_text, batches of `batch`): the baseline the ingest is held against."""
    import torch

    side = encoder._model.visual.image_size
    side = side[0] if isinstance(side, tuple | list) else side
    pixels = torch.from_numpy(np.random.default_rng(0).standard_normal((batch, 3, side, side), np.float32))
    with torch.inference_mode():
        image_s = 0.0
        for start in range(0, images, batch):
            n = min(batch, images - start)
            image_s += _time(lambda n=n: encoder._model.encode_image(pixels[:n]))
        text_s = 0.0
        for start in range(0, len(texts), batch):
            chunk = texts[start : start + batch]
            text_s += _time(lambda chunk=chunk: encoder._model.encode_text(encoder._tokenizer(chunk)))
    return {
        "images_s": round(image_s, 2),
        "captions_s": round(text_s, 2),
        "total_s": round(image_s + text_s, 2),
    }


def cli_ingest(folder: Path, dataset: str, env: dict[str, str], *extra: str) -> tuple[float, dict[str, Any]]:
    """`vstore ingest FOLDER --json` in a fresh process: (wall seconds seen from outside, its report)."""
    command = [sys.executable, "-m", "vstore", "ingest", str(folder), "--dataset", dataset, "--json", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"vstore ingest failed: {out.stderr.strip()[-2000:]}")
    report = json.loads(out.stdout)
    # CPU seconds of the process (and its decode workers): what the run costs when it need not wait for
    # a core, which on a shared machine the wall time does not show
    report["cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, report


def query_latency_ms(encoder: Any, text: str, repeats: int) -> dict[str, Any]:
    """One short text, encoded alone: encode_texts (padding-free) vs encode_text at full context,
    interleaved; p50 over repeats (after two warm-up calls each)."""
    import torch

    def full() -> None:
        with torch.inference_mode():
            encoder._model.encode_text(encoder._tokenizer([text]))

    for _ in range(2):
        encoder.encode_texts([text])
        full()
    fast, slow = [], []
    for _ in range(repeats):
        fast.append(1000 * _time(lambda: encoder.encode_texts([text])))
        slow.append(1000 * _time(full))
    return {
        "text": text,
        "torch_threads": torch.get_num_threads(),
        "padding_free_p50_ms": round(statistics.median(fast), 1),
        "full_context_p50_ms": round(statistics.median(slow), 1),
        "padding_free_min_ms": round(min(fast), 1),
        "full_context_min_ms": round(min(slow), 1),
    }


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("VSTORE_MODEL", None)
    env.pop("VSTORE_PRETRAINED", None)
    return env
