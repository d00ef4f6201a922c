"""Frozen lower layers computed once per text, not once per step (torch).

With the embeddings and the lowest ``k`` layers of an encoder frozen, their
output for a text never changes during training: :class:`LowerCache` computes
it the first time the text is seen (no gradient, eval mode) and keeps it, so
every later step and every validation pass runs only the upper layers. For the
110M teacher on a 2-core CPU this is what makes several epochs fit in a
session (models/teacher/README.md).

What it changes, and why it is safe:

- the frozen part runs in eval mode, without dropout (without the cache its
  dropout would still be active in training, on weights that do not learn);
- everything the frozen part computes with is frozen, including parameters the
  encoder shares between all layers (MPNet's relative position bias), so the
  cached states stay exactly what the exported model computes;
- the checkpoint is the ordinary one: the cache lives beside the weights, never
  in the state dict, and export, labeling and scoring run the full encoder.

Right-padded batches only (:func:`models.encoding.pad_batch`); a row's key is
its unpadded token ids, so padding never changes what is looked up.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.masking_utils import create_bidirectional_mask

if TYPE_CHECKING:
    from models.training.network import MultiTaskModel

__all__ = ["LowerCache", "cache_lower_layers"]

logger = logging.getLogger(__name__)


def _layer_stack(encoder: PreTrainedModel) -> nn.ModuleList:
    stack = encoder.get_submodule("encoder.layer")  # BERT and MPNet alike
    if not isinstance(stack, nn.ModuleList):
        raise TypeError(f"{type(encoder).__name__}: encoder.layer is not a layer list")
    return stack


def _run_layers(
    encoder: PreTrainedModel,
    states: torch.Tensor,
    attention_mask: torch.Tensor,
    layers: Iterable[nn.Module],
) -> torch.Tensor:
    """``layers`` of ``encoder`` on ``states``, as the encoder's own forward runs them."""
    mask = create_bidirectional_mask(
        config=encoder.config, inputs_embeds=states, attention_mask=attention_mask
    )
    extra = {}
    position_bias = getattr(encoder.get_submodule("encoder"), "compute_position_bias", None)
    if callable(position_bias):  # MPNet: one relative bias shared by all layers
        extra["position_bias"] = position_bias(states)
    for layer in layers:
        out = layer(states, mask, **extra)
        states = out[0] if isinstance(out, tuple) else out
    return states


class LowerCache:
    """The output of an encoder's frozen embeddings and lowest ``layers`` layers, per text."""

    def __init__(self, layers: int) -> None:
        if layers < 1:
            raise ValueError("cache at least one frozen layer")
        self.layers = layers
        self._states: dict[tuple[int, ...], torch.Tensor] = {}
        self.computed = 0
        self.reused = 0
        self._embeddings_take_types: bool | None = None

    def __len__(self) -> int:
        return len(self._states)

    def token_states(
        self,
        encoder: PreTrainedModel,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> torch.Tensor:
        """The encoder's last hidden states: cached lower part, then the upper layers."""
        counts = attention_mask.sum(dim=1)
        positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
        if not torch.equal(attention_mask.bool(), positions[None, :] < counts[:, None]):
            raise ValueError("LowerCache needs right-padded batches")
        lengths = counts.tolist()
        keys = [tuple(input_ids[i, :n].tolist()) for i, n in enumerate(lengths)]
        missing = [i for i, key in enumerate(keys) if key not in self._states]
        if missing:
            rows = torch.tensor(missing, device=input_ids.device)
            self._fill(
                encoder,
                [(keys[i], lengths[i]) for i in missing],
                input_ids[rows],
                attention_mask[rows],
                token_type_ids[rows],
            )
        self.computed += len(missing)
        self.reused += len(keys) - len(missing)
        width = input_ids.shape[1]
        first = self._states[keys[0]]
        lower = first.new_zeros((len(keys), width, first.shape[-1]))
        for i, key in enumerate(keys):
            lower[i, : lengths[i]] = self._states[key]
        return _run_layers(encoder, lower, attention_mask, _layer_stack(encoder)[self.layers :])

    def _fill(
        self,
        encoder: PreTrainedModel,
        rows: list[tuple[tuple[int, ...], int]],
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor,
    ) -> None:
        embeddings = encoder.get_submodule("embeddings")
        lower = _layer_stack(encoder)[: self.layers]
        modules = [embeddings, *lower]
        modes = [m.training for m in modules]
        if self._embeddings_take_types is None:  # once: the signature does not change
            params = inspect.signature(embeddings.forward).parameters
            self._embeddings_take_types = "token_type_ids" in params
        types = {"token_type_ids": token_type_ids} if self._embeddings_take_types else {}
        try:
            for module in modules:
                module.eval()
            with torch.no_grad():
                states = embeddings(input_ids=input_ids, **types)
                states = _run_layers(encoder, states, attention_mask, lower)
        finally:
            for module, mode in zip(modules, modes, strict=True):
                module.train(mode)
        for i, (key, n) in enumerate(rows):  # (key, length) of each row, keyed by the caller
            self._states[key] = states[i, :n].clone()


def cache_lower_layers(model: MultiTaskModel, layers: int) -> int:
    """Freeze everything below layer ``layers`` and compute it once per text from now on.

    Besides the embeddings and the lowest ``layers`` layers, this freezes every
    encoder parameter outside the upper layers (MPNet's shared relative
    position bias), so the cached states stay what the full encoder computes.
    Returns the number of parameters frozen by this call.
    """
    stack = _layer_stack(model.encoder)
    if not 1 <= layers < len(stack):
        raise ValueError(
            f"cache between 1 and {len(stack) - 1} of {len(stack)} layers, not {layers}"
        )
    upper = tuple(f"encoder.layer.{i}." for i in range(layers, len(stack)))
    frozen = 0
    for name, param in model.encoder.named_parameters():
        if not name.startswith(upper) and param.requires_grad:
            param.requires_grad_(False)
            frozen += param.numel()
    model.lower_cache = LowerCache(layers)
    logger.info("the lowest %s of %s encoder layers are computed once per text", layers, len(stack))
    return frozen
