"""The multi-task network: a shared BERT-style encoder with two linear heads (torch).

The encoder's token states are mean-pooled over the attention mask (as the
MiniLM sentence encoder was pre-trained), then each head is a dropout and a
linear layer. A checkpoint directory holds the encoder's ``config.json``,
``heads.json`` and ``model.pt`` (the whole state dict).
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel

if TYPE_CHECKING:
    from models.training.frozencache import LowerCache

__all__ = ["MultiTaskModel", "freeze_lower", "load_checkpoint", "save_checkpoint"]

_WEIGHTS = "model.pt"
_HEADS = "heads.json"


class MultiTaskModel(nn.Module):
    """Encoder + sentiment head + topic head; ``forward`` returns both logits."""

    def __init__(
        self, encoder: PreTrainedModel, n_sentiment: int, n_topic: int, dropout: float = 0.1
    ) -> None:
        super().__init__()
        self.encoder = encoder
        hidden = int(encoder.config.hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.sentiment_head = nn.Linear(hidden, n_sentiment)
        self.topic_head = nn.Linear(hidden, n_topic)
        self.head_config = {"n_sentiment": n_sentiment, "n_topic": n_topic, "dropout": dropout}
        # BERT takes token_type_ids, MPNet has no segment embeddings: the input is kept
        # (one ONNX signature for every encoder) and passed on only where it is used.
        self._takes_token_types = "token_type_ids" in inspect.signature(encoder.forward).parameters
        #: Training only: frozen lower layers computed once per text
        #: (:func:`models.training.frozencache.cache_lower_layers`); never saved.
        self.lower_cache: LowerCache | None = None

    @property
    def config(self) -> PretrainedConfig:
        """The encoder's Hugging Face config."""
        return self.encoder.config

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(sentiment_logits, topic_logits)`` for a padded batch."""
        if self.lower_cache is not None:
            states = self.lower_cache.token_states(
                self.encoder, input_ids, attention_mask, token_type_ids
            )
        else:
            types = {"token_type_ids": token_type_ids} if self._takes_token_types else {}
            states = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, **types
            ).last_hidden_state
        mask = attention_mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        pooled = self.dropout(pooled)
        return self.sentiment_head(pooled), self.topic_head(pooled)


def from_pretrained(
    base_model: Path | str, n_sentiment: int, n_topic: int, dropout: float = 0.1
) -> MultiTaskModel:
    """A fresh multi-task model on a local Hugging Face encoder directory."""
    encoder = AutoModel.from_pretrained(
        str(base_model), attn_implementation="eager", add_pooling_layer=False
    )
    return MultiTaskModel(encoder, n_sentiment, n_topic, dropout)


def freeze_lower(model: MultiTaskModel, *, embeddings: bool, layers: int) -> int:
    """Stop training the embeddings and/or the lowest ``layers`` encoder layers.

    Backpropagation then stops at the lowest trainable layer, which makes a step
    of a large encoder markedly cheaper. Returns the number of frozen parameters.
    """
    # BERT and MPNet alike: encoder.embeddings and encoder.encoder.layer (a ModuleList)
    stack = model.encoder.get_submodule("encoder.layer")
    if not isinstance(stack, nn.ModuleList) or layers > len(stack):
        raise ValueError(f"cannot freeze {layers} layers of this encoder")
    modules = [model.encoder.get_submodule("embeddings")] if embeddings else []
    modules.extend(stack[:layers])
    frozen = 0
    for module in modules:
        for param in module.parameters():
            param.requires_grad_(False)
            frozen += param.numel()
    return frozen


def from_config(config: PretrainedConfig, n_sentiment: int, n_topic: int) -> MultiTaskModel:
    """A randomly initialised multi-task model (tests, tiny models)."""
    encoder = AutoModel.from_config(config, attn_implementation="eager", add_pooling_layer=False)
    return MultiTaskModel(encoder, n_sentiment, n_topic)


def save_checkpoint(model: MultiTaskModel, directory: Path, extra: dict[str, Any]) -> None:
    """Save config, head sizes plus ``extra`` (labels, max length) and weights."""
    directory.mkdir(parents=True, exist_ok=True)
    model.config.to_json_file(str(directory / "config.json"))
    heads = {**model.head_config, **extra}
    (directory / _HEADS).write_text(json.dumps(heads, indent=2), encoding="utf-8")
    # host copies: a checkpoint of a GPU run loads anywhere, as one of a CPU run does
    state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
    torch.save(state, directory / _WEIGHTS)


def load_checkpoint(directory: Path) -> tuple[MultiTaskModel, dict[str, Any]]:
    """Load what :func:`save_checkpoint` wrote; returns the model (eval mode) and extras."""
    config = AutoConfig.from_pretrained(str(directory))
    heads = json.loads((directory / _HEADS).read_text(encoding="utf-8"))
    encoder = AutoModel.from_config(config, attn_implementation="eager", add_pooling_layer=False)
    model = MultiTaskModel(encoder, heads["n_sentiment"], heads["n_topic"], heads["dropout"])
    state = torch.load(directory / _WEIGHTS, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    model.eval()
    return model, heads
