"""save_model: a Model as one .npz file, written atomically (model_file.py reads it back). Apart
from model_file.py so that model.py (Model.save) and model_file.py (load_model, which builds a
Model) do not import each other."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mnist_nn.files import atomic_write, remove_stale_temporaries

if TYPE_CHECKING:
    from mnist_nn.model import Model

FORMAT_VERSION = 2


def save_model(model: Model, path: str | os.PathLike) -> Path:
    """Write `model` to one .npz file at `path`: complete, or not at all."""
    path = Path(path)
    settings = None if model.settings is None else model.settings.to_dict()
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        # Numpy unicode strings, not objects: they load with allow_pickle=False.
        "architecture": np.array(json.dumps(model.architecture())),
        "settings": np.array(json.dumps(settings)),
        "provenance": np.array(json.dumps(model.provenance)),
    }
    if model.train_fingerprint is not None:
        arrays["train_fingerprint"] = np.asarray(model.train_fingerprint, dtype=np.uint64)
    arrays.update({f"param:{name}": p for name, p in model.named_parameters().items()})
    remove_stale_temporaries(path.parent)  # left by a save that was killed mid-write
    with atomic_write(path) as file:
        np.savez(file, **arrays)
    return path
