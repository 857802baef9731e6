"""The Encoder boundary: images and texts in, L2-normalised float32 vectors out.

OpenClipEncoder wraps any open_clip model: by name + pretrained tag (downloads on first use), a local
checkpoint file, or `random` weights (seeded, so every process builds the same model: meaningless results,
real FLOPs, for pipeline tests and throughput runs). torch and open_clip are imported lazily.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from vstore.errors import ConfigError, ModelLoadError

RANDOM = "random"
RANDOM_SEED = 0
TINY_TEST_MODEL = "vstore-tiny"  # 32-d, 32x32 px; ships in encode/model_configs for tests
TEXT_BATCH_SIZE = 64  # texts per model call; batches are length-sorted, so their padding is small


@dataclass(frozen=True)
class ModelSpec:
    """What the database records about its model."""

    name: str
    pretrained: str  # a tag ("openai"), "random", or a local checkpoint path
    dim: int
    checkpoint_sha256: str | None = None
    # A checkpoint fine-tuned from random weights (`vstore finetune` on a --pretrained random database):
    # still no model of the world, so it keeps the random-weights warning.
    from_random: bool = False

    @property
    def seeded_random(self) -> bool:
        """The weights are open_clip's initialisation under vstore's seed (`--pretrained random`)."""
        return self.pretrained == RANDOM

    @property
    def random_weights(self) -> bool:
        """No model of the world: seeded random weights, or a checkpoint fine-tuned from them. The warning
        flag; which weights to load is `seeded_random`."""
        return self.seeded_random or self.from_random

    @property
    def label(self) -> str:
        """'ViT-B-32/openai'; a checkpoint is named by its file and hash, not its full path."""
        if self.checkpoint_sha256 is not None:
            return (
                f"{self.name} (checkpoint {Path(self.pretrained).name}, sha256 {self.checkpoint_sha256[:12]})"
            )
        return f"{self.name}/{self.pretrained}"


def _register_bundled_configs() -> None:
    import open_clip

    from vstore.resources import model_configs_dir

    if TINY_TEST_MODEL not in open_clip.list_models():
        open_clip.add_model_config(model_configs_dir())


def model_dim(name: str) -> int:
    """Embedding dimension of an open_clip architecture, from its config (no weights are loaded)."""
    import open_clip

    _register_bundled_configs()
    config = open_clip.get_model_config(name)
    if config is None:
        raise ConfigError(
            f'open_clip has no model named {name!r}. See `python -c "import open_clip; '
            'print(open_clip.list_models())"` for the names it knows.'
        )
    return int(config["embed_dim"])


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_spec(name: str, pretrained: str) -> ModelSpec:
    """Turn user options into a ModelSpec (dimension looked up, checkpoint hashed)."""
    checkpoint_sha = None
    if pretrained != RANDOM and Path(pretrained).expanduser().is_file():
        path = Path(pretrained).expanduser().resolve()
        pretrained, checkpoint_sha = str(path), _sha256_file(path)
    return ModelSpec(name=name, pretrained=pretrained, dim=model_dim(name), checkpoint_sha256=checkpoint_sha)


def surely_same_model(recorded: ModelSpec, name: str, pretrained: str) -> bool:
    """True when (name, pretrained) certainly names the recorded model, decided without open_clip or torch:
    the recorded architecture (so its dimension) with the recorded tag, or with a checkpoint file whose
    content hash the record holds. False means "not sure": resolve_spec and compare (which imports
    open_clip). This keeps an unchanged re-run with VSTORE_PRETRAINED / --pretrained fast."""
    if name != recorded.name:
        return False
    if pretrained != RANDOM and Path(pretrained).expanduser().is_file():  # as resolve_spec decides
        path = Path(pretrained).expanduser().resolve()
        return recorded.checkpoint_sha256 is not None and _sha256_file(path) == recorded.checkpoint_sha256
    return recorded.checkpoint_sha256 is None and pretrained == recorded.pretrained


class Encoder(Protocol):
    spec: ModelSpec

    @property
    def device(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def image_transform(self) -> Callable[[Any], Any]:
        """PIL image -> model input tensor; picklable, so decode workers can apply it."""
        ...

    def encode_images(self, pixels: Any) -> np.ndarray: ...

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"--device {device} asked for, but torch sees no CUDA GPU; use --device cpu.")
    return device


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def create_model(spec: ModelSpec) -> tuple[Any, Callable[[Any], Any], Callable[[Any], Any]]:
    """(model, training transform, eval transform) of a spec, through open_clip: the one place that turns
    a model record into weights, so the encoder and fine-tuning start from the very same model."""
    import open_clip
    import torch

    _register_bundled_configs()
    try:
        if spec.seeded_random:
            torch.manual_seed(RANDOM_SEED)  # same weights in every process that opens this database
            with _quiet_root_logger():  # open_clip warns "no pretrained weights"; vstore warns itself
                model, train, preprocess = open_clip.create_model_and_transforms(spec.name, pretrained=None)
        else:
            model, train, preprocess = open_clip.create_model_and_transforms(
                spec.name, pretrained=spec.pretrained
            )
    except Exception as exc:  # network errors, missing files, bad tags all surface differently
        raise ModelLoadError(
            f"could not load open_clip model {spec.name!r} with pretrained={spec.pretrained!r}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}. Fix: this machine may be "
            "offline; pass --pretrained /path/to/checkpoint.pt, warm the Hugging Face cache (HF_HOME) "
            "where there is network, or use --pretrained random to exercise the pipeline "
            "(results are then meaningless)."
        ) from exc
    return model, train, preprocess


class OpenClipEncoder:
    def __init__(
        self,
        spec: ModelSpec,
        device: str = "auto",
        threads: int | None = None,
        text_batch_size: int = TEXT_BATCH_SIZE,
    ) -> None:
        import torch

        _register_bundled_configs()
        if threads:
            torch.set_num_threads(threads)
        self.spec = spec
        self.device = pick_device(device)
        model, _, preprocess = create_model(spec)
        self._attach(model, preprocess, text_batch_size)

    def _attach(self, model: Any, preprocess: Callable[[Any], Any], text_batch_size: int) -> None:
        import open_clip

        from vstore.encode.text import TextEncoder

        self._model = model.to(self.device).eval()
        self._preprocess = preprocess
        self._tokenizer = open_clip.get_tokenizer(self.spec.name)
        self.context_length = int(getattr(self._tokenizer, "context_length", 77))
        self.text = TextEncoder(self._model, self._tokenizer, self._forward, text_batch_size)

    @classmethod
    def around(
        cls, spec: ModelSpec, model: Any, preprocess: Callable[[Any], Any], device: str
    ) -> OpenClipEncoder:
        """An encoder over a model already in memory (fine-tuning scores the model it is training); the
        model is switched to eval mode, the caller switches it back."""
        encoder = cls.__new__(cls)
        encoder.spec = spec
        encoder.device = device
        encoder._attach(model, preprocess, TEXT_BATCH_SIZE)
        return encoder

    @property
    def dim(self) -> int:
        return self.spec.dim

    def image_transform(self) -> Callable[[Any], Any]:
        return self._preprocess

    def _forward(self, fn: Callable[[Any], Any], batch: Any) -> np.ndarray:
        """One batch through the model on its device: inference mode, fp16 autocast on CUDA. Returns the
        model's vectors as float32, not normalised."""
        import torch

        with torch.inference_mode():
            if self.device.startswith("cuda"):
                with torch.autocast("cuda", dtype=torch.float16):
                    out = fn(batch.to(self.device, non_blocking=True))
            else:
                out = fn(batch.to(self.device))
        return out.float().cpu().numpy()

    def encode_images(self, pixels: Any) -> np.ndarray:
        import torch

        if isinstance(pixels, np.ndarray):
            pixels = torch.from_numpy(pixels)
        return l2_normalise(self._forward(self._model.encode_image, pixels))

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Texts in any order and number: batched by token length (padding-free where exact, see
        encode/text.py), vectors returned in the order given."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return l2_normalise(self.text.encode(list(texts)))

    def count_tokens(self, text: str) -> int:
        """Tokens including start/end markers; more than context_length means the text gets truncated."""
        encode = getattr(self._tokenizer, "encode", None)
        if encode is None:
            return 0
        return len(encode(text)) + 2


def load_encoder(spec: ModelSpec, device: str = "auto", threads: int | None = None) -> Encoder:
    return OpenClipEncoder(spec, device=device, threads=threads)


class LazyEncoder:
    """An Encoder that loads its model (torch, open_clip, weights: seconds) on the first call that needs
    it, so a run with nothing to encode never pays for it. `dim` and `spec` need no model."""

    def __init__(self, spec: ModelSpec, device: str = "auto", threads: int | None = None) -> None:
        self.spec = spec
        self._device, self._threads = device, threads
        self._encoder: Encoder | None = None
        self.load_s = 0.0  # seconds the load took, 0 while not loaded

    @property
    def loaded(self) -> bool:
        return self._encoder is not None

    @property
    def encoder(self) -> Encoder:
        if self._encoder is None:
            started = time.perf_counter()
            self._encoder = load_encoder(self.spec, device=self._device, threads=self._threads)
            self.load_s = time.perf_counter() - started
        return self._encoder

    @property
    def dim(self) -> int:
        return self.spec.dim

    @property
    def device(self) -> str:
        return self.encoder.device

    @property
    def context_length(self) -> int:
        return int(getattr(self.encoder, "context_length", 77))

    def image_transform(self) -> Callable[[Any], Any]:
        return self.encoder.image_transform()

    def encode_images(self, pixels: Any) -> np.ndarray:
        return self.encoder.encode_images(pixels)

    def encode_texts(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encoder.encode_texts(texts)

    def count_tokens(self, text: str) -> int:
        return self.encoder.count_tokens(text)
