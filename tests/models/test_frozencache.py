"""Frozen lower layers computed once per text: same numbers, cheaper steps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModel

from models.encoding import TextEncoder
from models.training.batches import to_tensors
from models.training.config import TrainConfig
from models.training.frozencache import cache_lower_layers
from models.training.loop import predict_logits
from models.training.network import freeze_lower, load_checkpoint
from models.training.run import run_training
from models.training.tiny import tiny_network

TEXTS = [[101, 2000, 2001, 2002, 102], [101, 2003, 102], [101, 2004, 2005, 102]]


@pytest.mark.parametrize("architecture", ["bert", "mpnet"])
def test_the_cached_path_computes_what_the_full_encoder_computes(architecture: str) -> None:
    model = tiny_network(architecture=architecture)
    full = model(*to_tensors(TEXTS))
    cache_lower_layers(model, 1)
    model(*to_tensors(TEXTS[:2]))  # two texts cached, padded to 5 tokens
    cached = model(*to_tensors(TEXTS))  # now padded to 5 with a third, new text
    cache = model.lower_cache
    assert cache is not None and (len(cache), cache.computed, cache.reused) == (3, 3, 2)
    for want, got in zip(full, cached, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_everything_the_cached_layers_use_is_frozen_and_stays_so() -> None:
    """MPNet shares one relative position bias between its layers: it is frozen too."""
    model = tiny_network(architecture="mpnet")
    freeze_lower(model, embeddings=True, layers=1)
    shared = model.encoder.encoder.relative_attention_bias.weight
    assert shared.requires_grad
    assert cache_lower_layers(model, 1) == shared.numel() and not shared.requires_grad
    upper = ("encoder.encoder.layer.1.", "sentiment_head.", "topic_head.")
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith(upper) for n in trainable)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    model.train()
    for _ in range(3):
        sentiment, topic = model(*to_tensors(TEXTS))
        (sentiment.sum() + topic.sum()).backward()
        optimizer.step()
        optimizer.zero_grad()
    moved = {k for k, v in model.state_dict().items() if not torch.equal(before[k], v)}
    assert moved and all(k.startswith(upper) for k in moved)
    assert set(model.state_dict()) == set(before)  # the cache is never saved
    # after training, the cached path still equals the full encoder (nothing below moved)
    model.eval()
    cached = model(*to_tensors(TEXTS))
    model.lower_cache = None
    for want, got in zip(model(*to_tensors(TEXTS)), cached, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_the_frozen_part_runs_without_dropout() -> None:
    """Texts first met in a training step are cached as the eval-mode encoder computes them."""
    model = tiny_network()
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.5
    full = model.eval()(*to_tensors(TEXTS))
    cache_lower_layers(model, 1)
    model.train()(*to_tensors(TEXTS))  # fills the cache, with dropout on above it
    cached = model.eval()(*to_tensors(TEXTS))
    for want, got in zip(full, cached, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_bad_uses_are_refused() -> None:
    with pytest.raises(ValidationError, match="needs freeze_embeddings and freeze_layers"):
        TrainConfig(base_model="x", cache_frozen_layers=True, freeze_layers=2)
    with pytest.raises(ValueError, match="between 1 and 1 of 2 layers, not 2"):
        cache_lower_layers(tiny_network(), 2)
    model = tiny_network()
    cache_lower_layers(model, 1)
    ids, mask, types = to_tensors(TEXTS)
    with pytest.raises(ValueError, match="right-padded"):
        model(ids.flip(1), mask.flip(1), types)


def test_a_run_with_cached_layers_saves_a_checkpoint_the_full_encoder_reproduces(
    toy_data: dict[str, Path], tiny_base_model: Path, tmp_path: Path
) -> None:
    """The validation logits kept with the checkpoint (computed through the cache)
    are what the saved weights give without it, and the frozen layers are the base's."""
    config = TrainConfig(
        base_model=str(tiny_base_model),
        max_length=32,
        epochs=2,
        batch_size=16,
        learning_rate=5e-3,
        val_fraction=0.25,
        threads=1,
        freeze_embeddings=True,
        freeze_layers=1,
        cache_frozen_layers=True,
    )
    run_training(config, toy_data, tmp_path)
    model, _ = load_checkpoint(tmp_path / "best")
    assert model.lower_cache is None
    kept = np.load(tmp_path / "best" / "val_logits.npz")
    encoder = TextEncoder.from_file(tmp_path / "best" / "tokenizer.json", 32)
    for head in ("sentiment", "topic"):
        texts = pd.read_csv(tmp_path / f"val_{head}.csv")["text"].tolist()
        sentiment, topic = predict_logits(model, encoder.encode_truncated(texts))
        logits = sentiment if head == "sentiment" else topic
        np.testing.assert_allclose(logits, kept[f"{head}_logits"], rtol=1e-4, atol=1e-5)
    base = AutoModel.from_pretrained(str(tiny_base_model), add_pooling_layer=False).state_dict()
    for name, weights in model.encoder.state_dict().items():
        if name.startswith(("embeddings.", "encoder.layer.0.")):
            torch.testing.assert_close(weights, base[name], rtol=0, atol=0)
    assert json.loads((tmp_path / "config.json").read_text())["cache_frozen_layers"] is True
