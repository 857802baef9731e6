"""Text encoding without the padding, where that is exact.

open_clip pads every text to the tokenizer's context (77 tokens), but a COCO caption is ~14 tokens. In a
CLIP-style text tower the attention mask is causal (position i sees positions <= i only) and the output is
pooled at one position p per text (the end-of-text token: `argmax` or `eos` pooling). Everything after p
can then not reach the pooled vector, so a batch can be cut to max(p) + 1 positions (token ids, positional
embedding and causal mask sliced alike) and gives the same vectors as `encode_text`, up to float rounding
(~1e-6). Sorting texts by p before batching (length buckets) keeps each batch's max(p) close to its texts'.

Towers where this is not exact fall back to open_clip's own `encode_text` on full-context batches:
bidirectional attention (SigLIP-style), a padding mask, an appended class token (CoCa), `first`/`last`
pooling, Hugging Face text towers, or any model class whose `encode_text` is not open_clip's CLIP or
CustomTextCLIP one. Only open_clip's own modules run (transformer, ln_final, text_projection).

The path relies on open_clip >= 2.26's module contract: the text transformer takes batch-first input
[batch, tokens, width] and says so with a `batch_first` attribute (2.24's takes sequence-first input and
has none; its callers permute). Every attribute read is checked, not assumed: a tower from an open_clip
that lacks one (`batch_first`, `use_pad_mask`, `text_pool_type` ...) falls back to `encode_text`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

SMALL_BATCH_POSITIONS = 128  # texts x tokens at or below which one torch thread runs the batch (below)
PADDING_FREE = "padding-free"
FULL_CONTEXT = "full-context"
EXACT_POOLS = ("argmax", "eos")  # pooled at one position computed from the token ids


@dataclass(frozen=True)
class TextTower:
    """The modules of an open_clip text tower that padding-free encoding runs (shared, not copied)."""

    token_embedding: Any
    positional_embedding: Any
    transformer: Any
    ln_final: Any
    text_projection: Any
    attn_mask: Any  # the causal mask, [context, context]
    pool_type: str
    eos_id: int | None


def _is_causal(mask: Any) -> bool:
    """True for open_clip's additive causal mask: -inf strictly above the diagonal, 0 elsewhere."""
    import torch

    if mask is None or mask.dim() != 2 or mask.shape[0] != mask.shape[1]:
        return False
    upper = torch.ones_like(mask, dtype=torch.bool).triu(1)
    return bool(torch.isneginf(mask[upper]).all()) and bool((mask[~upper] == 0).all())


def _attributes(owner: Any, names: tuple[str, ...]) -> dict[str, Any] | None:
    """owner's attributes by name, or None when it lacks any (an open_clip without this module shape)."""
    missing = object()
    found = {name: getattr(owner, name, missing) for name in names}
    return None if any(value is missing for value in found.values()) else found


TOWER_ATTRIBUTES = ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")


def _batch_first_transformer(transformer: Any) -> bool:
    """True for a transformer whose forward takes [batch, tokens, width] (open_clip >= 2.26 declares it with
    `batch_first`, transposing inside when False). 2.24's has no such attribute and takes sequence-first
    input: fed batch-first tokens it crashes or mixes texts."""
    return hasattr(transformer, "batch_first") and callable(getattr(transformer, "get_cast_dtype", None))


def text_tower(model: Any) -> TextTower | None:
    """The tower's modules when padding-free encoding is exact for `model`, else None (use encode_text)."""
    from open_clip.model import CLIP, CustomTextCLIP
    from open_clip.transformer import TextTransformer

    model_type = type(model)
    if isinstance(model, CLIP) and model_type.encode_text is CLIP.encode_text:
        parts = _attributes(model, (*TOWER_ATTRIBUTES, "attn_mask", "text_pool_type"))
        if parts is None:
            return None
        tower = TextTower(
            **{name: parts[name] for name in TOWER_ATTRIBUTES},
            attn_mask=parts["attn_mask"],
            pool_type=parts["text_pool_type"],
            eos_id=getattr(model, "text_eos_id", None),
        )
    elif isinstance(model, CustomTextCLIP) and model_type.encode_text is CustomTextCLIP.encode_text:
        text = model.text
        if not isinstance(text, TextTransformer) or type(text).forward is not TextTransformer.forward:
            return None
        parts = _attributes(text, (*TOWER_ATTRIBUTES, "attn_mask", "pool_type", "cls_emb", "output_tokens"))
        if (
            parts is None
            or parts["cls_emb"] is not None  # CoCa: a class token appended after the padding, pooled last
            or getattr(text, "use_pad_mask", False)  # the pad mask changes what each position attends to
            or parts["output_tokens"]  # forward returns (pooled, tokens): leave that shape to open_clip
        ):
            return None
        tower = TextTower(
            **{name: parts[name] for name in TOWER_ATTRIBUTES},
            attn_mask=parts["attn_mask"],
            pool_type=parts["pool_type"],
            eos_id=getattr(text, "eos_id", None),
        )
    else:
        return None
    if not _batch_first_transformer(tower.transformer):
        return None
    if tower.pool_type not in EXACT_POOLS or not _is_causal(tower.attn_mask):
        return None
    if tower.pool_type == "eos" and tower.eos_id is None:
        return None
    return tower


def pool_positions(tokens: Any, pool_type: str, eos_id: int | None) -> Any:
    """Where open_clip's text_global_pool reads each text's vector, computed the same way from the ids."""
    if pool_type == "argmax":
        return tokens.argmax(dim=-1)
    return (tokens == eos_id).int().argmax(dim=-1)


def encode_padding_free(tower: TextTower, tokens: Any, positions: Any) -> Any:
    """open_clip's encode_text for a batch cut to max(positions) + 1 tokens (see the module doc)."""
    import torch

    length = int(positions.max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = tower.transformer.get_cast_dtype()
    x = tower.token_embedding(tokens).to(cast_dtype)
    x = x + tower.positional_embedding[:length].to(cast_dtype)
    x = tower.transformer(x, attn_mask=tower.attn_mask[:length, :length])
    x = tower.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), positions]
    projection = tower.text_projection
    if projection is None:
        return x
    if isinstance(projection, torch.nn.Linear):
        return projection(x)
    return x @ projection


def _cut_and_encode(tower: TextTower, positions: Any, tokens: Any) -> Any:
    return encode_padding_free(tower, tokens, positions.to(tokens.device))


@contextmanager
def _single_thread_if_small(positions: int) -> Iterator[None]:
    """Run a tiny batch (one short query: ~8 tokens) on one torch thread. Its matrices are too small for
    intra-op parallelism to pay, and on a shared machine every parallel op waits for a descheduled
    worker thread: measured on 2 busy cores, one query took p50 125 ms on one thread vs 913 ms on two."""
    import torch

    threads = torch.get_num_threads()
    if positions > SMALL_BATCH_POSITIONS or threads == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def length_batches(lengths: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Indices into `lengths`, sorted by length (stable) and cut into batches of at most batch_size."""
    order = np.argsort(lengths, kind="stable")
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


class TextEncoder:
    """Texts -> unnormalised float32 vectors of an open_clip model, padding-free where exact.

    `run(fn, batch)` runs one batch on the model's device (inference mode, autocast on CUDA) and returns
    a numpy array; the encoder that owns the model supplies it. `path` says which way texts go;
    `batches` counts batches by path and `positions` the token positions the model ran (texts x length),
    so callers and tests can see the fallback ran and how much padding was cut."""

    def __init__(
        self,
        model: Any,
        tokenizer: Callable[[list[str]], Any],
        run: Callable[[Callable[[Any], Any], Any], np.ndarray],
        batch_size: int = 64,
    ) -> None:
        self.model, self.tokenizer, self.run, self.batch_size = model, tokenizer, run, batch_size
        self.tower = text_tower(model)
        self.path = PADDING_FREE if self.tower is not None else FULL_CONTEXT
        self.batches = {PADDING_FREE: 0, FULL_CONTEXT: 0}
        self.positions = 0

    def encode(self, texts: list[str]) -> np.ndarray:
        import torch

        tokens = self.tokenizer(texts)
        tower = self.tower
        if tower is None:
            parts = []
            for start in range(0, len(texts), self.batch_size):
                parts.append(self.run(self.model.encode_text, tokens[start : start + self.batch_size]))
                self.batches[FULL_CONTEXT] += 1
            self.positions += int(tokens.numel())
            return np.concatenate(parts)
        positions = pool_positions(tokens, tower.pool_type, tower.eos_id)
        out: np.ndarray | None = None
        for index in length_batches(positions.numpy(), self.batch_size):
            rows = torch.from_numpy(index)
            at = positions[rows]
            size = len(index) * (int(at.max()) + 1)
            with _single_thread_if_small(size):
                vectors = self.run(partial(_cut_and_encode, tower, at), tokens[rows])
            if out is None:
                out = np.empty((len(texts), vectors.shape[1]), dtype=np.float32)
            out[index] = vectors
            self.batches[PADDING_FREE] += 1
            self.positions += size
        assert out is not None
        return out
