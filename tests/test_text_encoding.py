"""Padding-free text encoding (vstore/encode/text.py): the same vectors as open_clip's encode_text for
causal, end-of-text-pooled towers; the full-context fallback for every other tower; order kept across
length buckets."""

from __future__ import annotations

import numpy as np
import pytest

from vstore.encode.text import FULL_CONTEXT, PADDING_FREE, TextEncoder

TOLERANCE = 1e-5  # max abs difference to encode_text, before normalisation

# Mixed lengths, deliberately not sorted: near-empty ones, a typical caption, and one that the tokenizer
# truncates at 77 tokens.
TEXTS = [
    "A man riding a wave on top of a surfboard.",
    "",
    "a",
    "cat " * 120,
    "Two dogs",
    ".",
    "A kitchen with a stove, a sink and a refrigerator next to a window with white curtains.",
    "a red bus",
    "people standing around a long table covered with plates of food at an outdoor party " * 2,
]


def _forward(fn, batch):
    import torch

    with torch.inference_mode():
        return fn(batch).float().numpy()


def _reference(model, tokenizer, texts: list[str]) -> np.ndarray:
    """open_clip's own encode_text on the full-context tokens, all texts in one batch."""
    return _forward(model.encode_text, tokenizer(texts))


def _tiny_tokenizer():
    import open_clip

    return open_clip.get_tokenizer("vstore-tiny")


TINY_VISION = {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 16}
TINY_TEXT = {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}


def _custom_text_model(**text_cfg):
    """A tiny CustomTextCLIP (the class SigLIP-style and CoCa-like configs build) with seeded weights."""
    import torch
    from open_clip.model import CustomTextCLIP

    torch.manual_seed(1)
    return CustomTextCLIP(embed_dim=16, vision_cfg=TINY_VISION, text_cfg={**TINY_TEXT, **text_cfg}).eval()


def test_tiny_model_is_padding_free_and_matches_encode_text(tiny_encoder):
    text = TextEncoder(tiny_encoder._model, tiny_encoder._tokenizer, _forward, batch_size=3)
    assert text.path == PADDING_FREE
    got = text.encode(TEXTS)
    want = _reference(tiny_encoder._model, tiny_encoder._tokenizer, TEXTS)
    assert np.abs(got - want).max() < TOLERANCE
    assert text.batches == {PADDING_FREE: 3, FULL_CONTEXT: 0}
    # the padding was cut: fewer positions ran than texts x 77 (only the truncated text's batch is full)
    assert text.positions < len(TEXTS) * 77 / 2


def test_order_is_restored_after_length_bucketing(tiny_encoder):
    rng = np.random.default_rng(3)
    texts = [TEXTS[i] for i in rng.permutation(len(TEXTS))] + ["a red bus"]  # a duplicate too
    together = tiny_encoder.encode_texts(texts)
    one_by_one = np.stack([tiny_encoder.encode_texts([t])[0] for t in texts])
    assert np.abs(together - one_by_one).max() < TOLERANCE
    # and the rows are really different texts' vectors, so a permutation would have been caught
    assert np.abs(together[0] - together[1]).max() > 100 * TOLERANCE
    np.testing.assert_allclose(together[-1], together[texts.index("a red bus")], atol=TOLERANCE)


def test_empty_list_gives_no_rows(tiny_encoder):
    assert tiny_encoder.encode_texts([]).shape == (0, 32)


def test_custom_text_clip_with_causal_argmax_tower_is_padding_free():
    model = _custom_text_model()
    text = TextEncoder(model, _tiny_tokenizer(), _forward, batch_size=4)
    assert text.path == PADDING_FREE
    got = text.encode(TEXTS)
    assert np.abs(got - _reference(model, _tiny_tokenizer(), TEXTS)).max() < TOLERANCE


def test_eos_pooling_is_padding_free_and_exact():
    # eos_id 49407 is the CLIP tokenizer's end-of-text token
    model = _custom_text_model(pool_type="eos", eos_id=49407)
    text = TextEncoder(model, _tiny_tokenizer(), _forward, batch_size=4)
    assert text.path == PADDING_FREE
    got = text.encode(TEXTS)
    assert np.abs(got - _reference(model, _tiny_tokenizer(), TEXTS)).max() < TOLERANCE


def _pad_mask_model():
    """A bidirectional tower with a padding mask (open_clip's use_pad_mask, set on the TextTransformer:
    its config path does not pass it through)."""
    import torch
    from open_clip.transformer import TextTransformer

    model = _custom_text_model(no_causal_mask=True)
    torch.manual_seed(2)
    model.text = TextTransformer(
        width=32, heads=2, layers=2, output_dim=16, no_causal_mask=True, use_pad_mask=True, pool_type="argmax"
    ).eval()
    assert model.text.use_pad_mask
    return model


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: _custom_text_model(no_causal_mask=True, pool_type="last"), id="siglip-style"),
        pytest.param(lambda: _custom_text_model(no_causal_mask=True), id="bidirectional-argmax"),
        pytest.param(_pad_mask_model, id="pad-mask"),
        pytest.param(lambda: _custom_text_model(embed_cls=True), id="class-token"),
        pytest.param(lambda: _custom_text_model(pool_type="first"), id="first-token-pool"),
    ],
)
def test_towers_where_cutting_is_not_exact_fall_back_to_encode_text(build):
    model = build()
    calls = []
    original = model.encode_text

    def counted(tokens):
        calls.append(tokens.shape)
        return original(tokens)

    model.encode_text = counted
    text = TextEncoder(model, _tiny_tokenizer(), _forward, batch_size=4)
    assert text.path == FULL_CONTEXT
    got = text.encode(TEXTS)
    assert text.batches == {PADDING_FREE: 0, FULL_CONTEXT: 3}
    assert [shape[1] for shape in calls] == [77, 77, 77]  # full context, never cut
    assert np.abs(got - _reference(model, _tiny_tokenizer(), TEXTS)).max() < TOLERANCE


def test_a_clip_model_whose_pooling_or_mask_is_changed_falls_back():
    import torch
    from open_clip.model import CLIP

    torch.manual_seed(3)
    model = CLIP(embed_dim=16, vision_cfg=TINY_VISION, text_cfg=TINY_TEXT).eval()  # its own, not shared
    tokenizer = _tiny_tokenizer()
    assert TextEncoder(model, tokenizer, _forward).path == PADDING_FREE
    model.text_pool_type = "last"
    assert TextEncoder(model, tokenizer, _forward).path == FULL_CONTEXT
    model.text_pool_type = "argmax"
    model.attn_mask = None  # bidirectional: every position sees the padding
    text = TextEncoder(model, tokenizer, _forward, batch_size=4)
    assert text.path == FULL_CONTEXT
    assert np.abs(text.encode(TEXTS) - _reference(model, tokenizer, TEXTS)).max() < TOLERANCE


@pytest.mark.slow
def test_vit_b_32_random_weights_padding_free_matches_encode_text():
    from vstore.encode.encoder import ModelSpec, OpenClipEncoder

    encoder = OpenClipEncoder(ModelSpec("ViT-B-32", "random", 512), device="cpu")
    text = TextEncoder(encoder._model, encoder._tokenizer, _forward, batch_size=3)
    assert text.path == PADDING_FREE
    got = text.encode(TEXTS)
    want = _reference(encoder._model, encoder._tokenizer, TEXTS)
    assert np.abs(got - want).max() < TOLERANCE
    assert np.abs(want).max() > 0.1  # real magnitudes, not a degenerate all-zero output


def test_a_single_short_query_runs_on_one_thread_and_big_batches_on_all(tiny_encoder):
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    seen: list[int] = []

    def recording(fn, batch):
        seen.append(torch.get_num_threads())
        return _forward(fn, batch)

    try:
        text = TextEncoder(tiny_encoder._model, tiny_encoder._tokenizer, recording, batch_size=64)
        text.encode(["a dog on a skateboard"])
        text.encode(["a long caption about a man riding a wave on top of a surfboard"] * 40)
        assert seen == [1, 2]
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(threads)


def _sequence_first_transformer(width: int, layers: int, heads: int):
    """A text transformer with open_clip 2.24's contract: forward takes [tokens, batch, width] (its callers
    permute) and there is no `batch_first` attribute. Real open_clip blocks, run sequence-first."""
    import torch
    from open_clip.transformer import Transformer

    class SequenceFirst(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.resblocks = Transformer(width, layers, heads, batch_first=False).resblocks

        def get_cast_dtype(self):
            return self.resblocks[0].mlp.c_fc.weight.dtype

        def forward(self, x, attn_mask=None):
            for block in self.resblocks:
                x = block(x, attn_mask=attn_mask)
            return x

    module = SequenceFirst().eval()
    assert not hasattr(module, "batch_first")
    return module


def _encode_text_2_24(model, text):
    """open_clip 2.24's CLIP.encode_text: it permutes around its sequence-first transformer."""
    import torch

    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(text).to(cast_dtype) + model.positional_embedding.to(cast_dtype)
    x = model.transformer(x.permute(1, 0, 2), attn_mask=model.attn_mask).permute(1, 0, 2)
    x = model.ln_final(x)
    return x[torch.arange(x.shape[0]), text.argmax(dim=-1)] @ model.text_projection


def test_a_sequence_first_text_transformer_as_in_open_clip_2_24_falls_back_to_encode_text():
    """Issue 20, item 12: pyproject allows open_clip_torch>=2.24, whose text transformer is sequence-first.
    Its model is a plain CLIP (same class, same encode_text), so only the transformer's own contract tells:
    cut batch-first tokens fed to it crash or mix texts; the encoder must use encode_text instead."""
    import types

    import torch
    from open_clip.model import CLIP

    torch.manual_seed(4)
    model = CLIP(embed_dim=16, vision_cfg=TINY_VISION, text_cfg=TINY_TEXT).eval()
    model.transformer = _sequence_first_transformer(width=32, layers=2, heads=2)
    model.encode_text = types.MethodType(_encode_text_2_24, model)  # what 2.24's class method does
    tokenizer = _tiny_tokenizer()
    text = TextEncoder(model, tokenizer, _forward, batch_size=4)
    assert text.path == FULL_CONTEXT
    got = text.encode(TEXTS)
    assert text.batches == {PADDING_FREE: 0, FULL_CONTEXT: 3}
    assert np.abs(got - _reference(model, tokenizer, TEXTS)).max() < TOLERANCE
    assert np.abs(got[0] - got[2]).max() > 100 * TOLERANCE  # different texts, different vectors


def test_a_custom_text_tower_without_open_clip_3_attributes_falls_back_instead_of_raising():
    """2.24's TextTransformer has no `use_pad_mask` and a sequence-first transformer: reading the attribute
    must not raise, and the tower must not be cut."""
    model = _custom_text_model()
    del model.text.use_pad_mask
    assert TextEncoder(model, _tiny_tokenizer(), _forward).path == PADDING_FREE  # the attribute may be absent
    model.text.transformer = _sequence_first_transformer(width=32, layers=2, heads=2)
    assert TextEncoder(model, _tiny_tokenizer(), _forward).path == FULL_CONTEXT
