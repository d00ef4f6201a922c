"""Weight averaging ("model soup") of training runs that differ only in their train seed.

``python -m models.training.soup --out DIR RUN RUN [RUN ...]``.

Runs of one recipe from one pre-trained encoder, differing only in
``train_seed`` (head initialisation, dropout, batch order), end in one basin
of the loss, so the mean of their weights is a model of its own that is
usually at least as good as its best member and costs nothing at inference
(Wortsman et al., 2022, "Model soups"). The heads are single linear layers on
a mean-pooled encoder, so there is no permutation of units to align first.

The soup is written as a run directory that ``finsentinel export`` takes
unchanged: the members' shared run files (config, data, validation rows), a
``best/`` checkpoint with the averaged weights and *its own* validation
logits (for calibration), ``metrics.jsonl`` with every member's epochs tagged
by seed, and ``soup.json`` with each member's and the soup's validation scores.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from models.data import load_labeled
from models.encoding import TextEncoder
from models.exceptions import TrainingError
from models.labels import HEADS
from models.training.loop import checkpoint_score, head_metrics, predict_logits
from models.training.network import MultiTaskModel, load_checkpoint, save_checkpoint

__all__ = ["average_state_dicts", "main", "soup_runs"]

logger = logging.getLogger(__name__)

#: Config fields the members of a soup may differ in; anything else means another recipe.
SEED_FIELDS: Final = frozenset({"train_seed"})
#: Run files every member must have byte for byte (same data, same validation split).
_SHARED_FILES: Final = ("data.json", *(f"val_{head}.csv" for head in HEADS))


def average_state_dicts(states: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The element-wise mean of ``states`` (floating tensors; others must be equal).

    >>> a = {"w": torch.tensor([1.0, 2.0]), "ids": torch.tensor([0, 1])}
    >>> b = {"w": torch.tensor([3.0, 6.0]), "ids": torch.tensor([0, 1])}
    >>> average_state_dicts([a, b])["w"].tolist()
    [2.0, 4.0]
    """
    if not states:
        raise TrainingError("a soup needs at least one state dict")
    keys = list(states[0])
    out: dict[str, torch.Tensor] = {}
    for i, state in enumerate(states[1:], start=1):
        if list(state) != keys:
            missing = sorted(set(keys) ^ set(state))
            raise TrainingError(f"member {i} has other parameters than member 0: {missing[:5]}")
    for key in keys:
        tensors = [state[key] for state in states]
        first = tensors[0]
        for i, tensor in enumerate(tensors[1:], start=1):
            if tensor.shape != first.shape or tensor.dtype != first.dtype:
                raise TrainingError(
                    f"{key}: member {i} has {tuple(tensor.shape)} {tensor.dtype}, "
                    f"member 0 {tuple(first.shape)} {first.dtype}"
                )
        if first.is_floating_point():
            # summed in float64 so that the mean does not depend on the members' order
            total = torch.stack([t.to(torch.float64) for t in tensors]).sum(dim=0)
            out[key] = (total / len(tensors)).to(first.dtype)
        elif all(torch.equal(first, t) for t in tensors[1:]):
            out[key] = first.clone()
        else:
            raise TrainingError(f"{key}: a non-floating tensor differs between members")
    return out


def _config(run: Path) -> dict[str, Any]:
    path = run / "config.json"
    if not (run / "best" / "model.pt").is_file() or not path.is_file():
        raise TrainingError(f"{run}: not a training run (config.json and best/model.pt)")
    config: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return config


def _check_one_recipe(runs: Sequence[Path]) -> list[dict[str, Any]]:
    """The members' configs; raises unless they differ in the seed fields only."""
    configs = [_config(run) for run in runs]
    recipe = {k: v for k, v in configs[0].items() if k not in SEED_FIELDS}
    for run, config in zip(runs[1:], configs[1:], strict=True):
        other = {k: v for k, v in config.items() if k not in SEED_FIELDS}
        if other != recipe:
            fields = sorted(
                k for k in recipe.keys() | other.keys() if recipe.get(k) != other.get(k)
            )
            raise TrainingError(f"{run} is another recipe than {runs[0]}: {', '.join(fields)}")
        for name in _SHARED_FILES:
            mine, theirs = runs[0] / name, run / name
            if mine.is_file() != theirs.is_file() or (
                mine.is_file() and mine.read_bytes() != theirs.read_bytes()
            ):
                raise TrainingError(f"{run}: {name} differs from {runs[0]} (other data or split)")
    return configs


def _validation_logits(
    model: MultiTaskModel, run: Path, tokenizer: Path, max_length: int
) -> tuple[dict[str, np.ndarray], dict[str, dict[str, float]]]:
    """The model's logits and metrics on each head's validation rows of ``run``."""
    encoder = TextEncoder.from_file(tokenizer, max_length)
    arrays: dict[str, np.ndarray] = {}
    metrics: dict[str, dict[str, float]] = {}
    for head in HEADS:
        path = run / f"val_{head}.csv"
        if not path.is_file():
            continue
        rows = load_labeled(path, head)
        sentiment, topic = predict_logits(model, encoder.encode_truncated(rows.texts))
        logits = sentiment if head == "sentiment" else topic
        arrays[f"{head}_logits"], arrays[f"{head}_labels"] = logits, rows.labels
        metrics[head] = head_metrics(logits, rows.labels)
    return arrays, metrics


def _member(run: Path, config: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """What the soup records of one member: its seed, best epoch and validation scores."""
    metrics = extra.get("metrics") or {}
    return {
        "run": run.name,
        "train_seed": config["seed"] if config.get("train_seed") is None else config["train_seed"],
        "best_epoch": extra.get("epoch"),
        "metrics": metrics,
        "score": checkpoint_score(metrics) if metrics else None,
    }


def _member_history(run: Path, seed: Any) -> list[str]:
    path = run / "metrics.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return [json.dumps({**json.loads(line), "member_train_seed": seed}) for line in lines if line]


def soup_runs(runs: Sequence[Path], out: Path) -> dict[str, Any]:
    """Average the best checkpoints of ``runs`` into the run directory ``out``.

    Returns what ``out/soup.json`` records: each member's validation metrics and
    score (from its checkpoint) and the soup's, computed on the same rows.
    """
    runs = [Path(run) for run in runs]
    if len(runs) < 2:
        raise TrainingError("a soup needs at least two runs")
    configs = _check_one_recipe(runs)
    if configs[0].get("init_seed") is None:
        logger.warning(
            "the members' heads started from their own train seeds (init_seed unset): "
            "their weights may not average well (models/README.md, model soups)"
        )
    model, extra = load_checkpoint(runs[0] / "best")
    states = [model.state_dict()]
    members = [_member(runs[0], configs[0], extra)]
    for run, config in zip(runs[1:], configs[1:], strict=True):
        member, member_extra = load_checkpoint(run / "best")
        states.append(member.state_dict())
        members.append(_member(run, config, member_extra))
    model.load_state_dict(average_state_dicts(states))
    model.eval()
    tokenizer = runs[0] / "best" / "tokenizer.json"
    if not tokenizer.is_file():
        tokenizer = Path(str(extra.get("base_model", ""))) / "tokenizer.json"
    arrays, metrics = _validation_logits(model, runs[0], tokenizer, int(extra["max_length"]))
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *_SHARED_FILES):
        if (runs[0] / name).is_file():
            shutil.copyfile(runs[0] / name, out / name)
    best = out / "best"
    save_checkpoint(model, best, {**extra, "epoch": None, "metrics": metrics, "soup_of": members})
    np.savez(best / "val_logits.npz", **arrays)  # type: ignore[arg-type]
    shutil.copyfile(tokenizer, best / "tokenizer.json")
    history = [
        line
        for run, m in zip(runs, members, strict=True)
        for line in _member_history(run, m["train_seed"])
    ]
    (out / "metrics.jsonl").write_text("".join(line + "\n" for line in history), encoding="utf-8")
    summary = {"members": members, "metrics": metrics, "score": checkpoint_score(metrics)}
    (out / "soup.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    logger.info(
        "soup of %s: score %.4f (members %s)",
        ", ".join(r.name for r in runs),
        summary["score"],
        ", ".join(str(m["score"]) for m in members),
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m models.training.soup", description=__doc__)
    parser.add_argument("runs", nargs="+", type=Path, help="Run directories of one recipe.")
    parser.add_argument("--out", type=Path, required=True, help="Run directory to write.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        summary = soup_runs(args.runs, args.out)
    except TrainingError as exc:
        logger.error("%s", exc)
        return 2
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
