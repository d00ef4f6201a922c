"""The topic + sentiment classifier: training, ONNX export and scoring.

The public API, imported lazily so that ``import models`` stays cheap and never
pulls in torch (training modules import it themselves)::

    from models import Classifier, Prediction, load_model_dir, DEFAULT_MODEL_DIR

See ``models/README.md`` for the model-directory format and the commands.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "DEFAULT_MODEL_DIR",
    "Classifier",
    "ModelCard",
    "ModelDir",
    "Prediction",
    "load_model_dir",
]

_WHERE = {
    "Classifier": "models.scoring",
    "Prediction": "models.scoring",
    "DEFAULT_MODEL_DIR": "models.modeldir",
    "ModelCard": "models.modeldir",
    "ModelDir": "models.modeldir",
    "load_model_dir": "models.modeldir",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")
