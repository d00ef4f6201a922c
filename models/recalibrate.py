"""Re-fit a model directory's temperatures on labeled validation rows (no torch).

``finsentinel models calibrate MODEL --data DATA`` scores each head's validation
rows (:func:`models.compare.frozen_validation`: the recipe's split or a run's
``val_<head>.csv``) without temperature, chooses each head's temperature by
out-of-fold ECE (:func:`models.calibration.choose_temperature`), and writes into
the card: ``temperature``, ``metrics.calibration`` (the candidates, the reliability
tables) and each variant's ``ece_before`` / ``ece_after`` on the
validation rows. Argmax, and so accuracy, does not change with a temperature.
A model with a drift reference gets it recomputed on the same texts, because
its confidence statistics move with the temperature.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from models.calibration import choose_temperature, expected_calibration_error
from models.compare import frozen_validation
from models.data import RECIPE_SEED, RECIPE_VAL_FRACTION
from models.drift import profile, save_reference
from models.labels import HEADS
from models.modeldir import load_model_dir, write_card
from models.scoring import Classifier, softmax

__all__ = ["recalibrate"]

logger = logging.getLogger(__name__)

_UNCALIBRATED = {"sentiment": 1.0, "topic": 1.0}


def recalibrate(
    model_dir: Path | str,
    data: Path | str,
    *,
    variant: str | None = None,
    val_fraction: float = RECIPE_VAL_FRACTION,
    seed: int = RECIPE_SEED,
) -> dict[str, Any]:
    """Choose and write new temperatures; returns ``{head: report}`` (see the module)."""
    model_dir = Path(model_dir)
    classifier = Classifier.load(model_dir, provider="cpu", variant=variant)
    card = classifier.card
    sets = frozen_validation(
        data, topic_labels=card.topic_labels, val_fraction=val_fraction, seed=seed
    )
    temperature = dict(card.temperature)
    reports: dict[str, Any] = {}
    metrics = dict(card.metrics)
    validation = {head: dict(v) for head, v in metrics.get("validation", {}).items()}
    texts: list[str] = []
    for head, rows in sets.items():
        encoded = classifier.tokenize(rows.texts)
        probs = classifier.probabilities(encoded, temperature=_UNCALIBRATED)[HEADS.index(head)]
        # Log-probabilities are the logits up to a per-row constant, which softmax ignores.
        logits = np.log(np.clip(probs, 1e-12, 1.0))
        t, report = choose_temperature(logits, rows.labels)
        temperature[head] = round(t, 4)
        report["variant"] = classifier.variant
        reports[head] = report
        entry = dict(validation.get(head, {}).get(classifier.variant, {}))
        entry["ece_before"] = expected_calibration_error(probs, rows.labels)
        entry["ece_after"] = expected_calibration_error(softmax(logits, t), rows.labels)
        validation.setdefault(head, {})[classifier.variant] = entry
        texts.extend(rows.texts)
        logger.info(
            "%s: %s temperature %.4f (was %.4f); ECE %.4f -> %.4f",
            head,
            report["method"],
            t,
            card.temperature.get(head, 1.0),
            entry["ece_before"],
            entry["ece_after"],
        )
    metrics["validation"] = validation
    metrics["calibration"] = reports
    write_card(model_dir, card.model_copy(update={"temperature": temperature, "metrics": metrics}))
    if card.reference is not None:
        recalibrated = Classifier.load(model_dir, provider="cpu")
        labels = {"sentiment": card.sentiment_labels, "topic": card.topic_labels}
        unique = list(dict.fromkeys(texts))
        reference = profile(
            recalibrated.predict(unique),
            labels,
            source=f"the validation rows of {data} (recalibrated)",
        )
        save_reference(model_dir, reference)
    load_model_dir(model_dir)  # the card and files still check out
    return reports
