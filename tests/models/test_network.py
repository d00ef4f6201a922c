"""The multi-task network on other encoders (MPNet) and with frozen lower layers."""

from __future__ import annotations

import pytest
import torch
from transformers import MPNetConfig

from models.training.batches import to_tensors
from models.training.network import freeze_lower, from_config
from models.training.tiny import tiny_network


def test_an_mpnet_encoder_takes_the_same_inputs() -> None:
    """MPNet has no token types: the network takes them and leaves them out."""
    config = MPNetConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=24,
        max_position_embeddings=40,
    )
    torch.manual_seed(0)
    model = from_config(config, 3, 20).eval()
    ids, mask, types = to_tensors([[0, 7, 8, 2], [0, 9, 2]])
    sentiment, topic = model(ids, mask, types)
    assert sentiment.shape == (2, 3) and topic.shape == (2, 20)
    # padding changes nothing for the shorter text
    alone, _ = model(*to_tensors([[0, 9, 2]]))
    torch.testing.assert_close(sentiment[1:], alone, rtol=1e-5, atol=1e-5)


def test_frozen_lower_layers_do_not_move() -> None:
    model = tiny_network()
    frozen = freeze_lower(model, embeddings=True, layers=1)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert frozen == sum(p.numel() for p in model.parameters() if not p.requires_grad) > 0
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.SGD(trainable, lr=0.5)
    sentiment, _ = model(*to_tensors([[101, 2000, 2001, 102]]))
    sentiment.sum().backward()
    optimizer.step()
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert not any(k.startswith(("encoder.embeddings.", "encoder.encoder.layer.0.")) for k in moved)
    assert any(k.startswith("encoder.encoder.layer.1.") for k in moved)
    with pytest.raises(ValueError, match="cannot freeze 3 layers"):
        freeze_lower(tiny_network(), embeddings=False, layers=3)
