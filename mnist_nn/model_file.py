"""A saved model is one .npz file: a format version, the architecture and the settings as JSON
text, and the parameters. save_model writes it atomically; load_model reads it without pickle, so
a model file can never run code, and checks every size before it allocates anything."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from mnist_nn.files import atomic_write
from mnist_nn.layers import LAYER_TYPES, Layer
from mnist_nn.model import Model
from mnist_nn.settings import Settings

# Version 1 files (no settings, provenance or fingerprint) still load.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)


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
    with atomic_write(path) as file:
        np.savez(file, **arrays)
    return path


class ModelFileError(ValueError):
    """A file that is not a valid mnist_nn model (truncated, tampered, foreign or too new)."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} is not a valid mnist_nn model file: {reason}")


def load_model(path: str | os.PathLike) -> Model:
    """Rebuild a Model saved with Model.save; a damaged or foreign file raises ValueError."""
    path = Path(path)
    arrays = _read_arrays(path)
    _check_version(path, arrays.pop("format_version", None))
    layer_specs, input_shape, settings = _read_description(path, arrays)
    provenance, train_fingerprint = _read_provenance(path, arrays)
    stored = {key.removeprefix("param:"): value for key, value in arrays.items()}
    _check_parameter_shapes(path, layer_specs, stored)
    model = _build(path, layer_specs, input_shape)
    model.settings, model.provenance = settings, provenance
    model.train_fingerprint = train_fingerprint
    for name, param in model.named_parameters().items():
        np.copyto(param, stored[name])
    return model


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    with open(path, "rb") as file:
        if file.read(2) != b"PK":  # every .npz file is a zip archive
            raise ModelFileError(
                path, "it is not an .npz archive; give a file written by Model.save or `train`"
            )
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, EOFError, OSError) as error:
        raise ModelFileError(
            path, f"it is truncated or corrupted ({error}); save it again"
        ) from None
    except ValueError as error:  # e.g. an object array, which would need pickle
        raise ModelFileError(
            path, f"it holds data that cannot be loaded safely ({error})"
        ) from None


def _check_version(path: Path, version: np.ndarray | None) -> None:
    if version is None:
        raise ModelFileError(path, "the entry 'format_version' is missing")
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise ModelFileError(path, "format_version must be a single integer")
    if int(version) not in READABLE_VERSIONS:
        raise ModelFileError(
            path,
            f"it has format version {int(version)}, this mnist_nn reads versions "
            f"{list(READABLE_VERSIONS)}; a newer mnist_nn wrote it",
        )


def _read_description(path: Path, arrays: dict) -> tuple[list, list, Settings | None]:
    """(layer type, config) pairs, the input shape and the settings, from the JSON entries."""
    if "architecture" not in arrays:
        raise ModelFileError(path, "the entry 'architecture' is missing")
    try:
        architecture = json.loads(str(arrays.pop("architecture")))
        input_shape = [int(size) for size in architecture["input_shape"]]
        layer_specs = [(spec["type"], dict(spec["config"])) for spec in architecture["layers"]]
        settings = json.loads(str(arrays.pop("settings", "null")))
        settings = None if settings is None else Settings.from_dict(settings)
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
        raise ModelFileError(path, f"its description is unreadable ({error})") from None
    for layer_type, _ in layer_specs:
        if layer_type not in LAYER_TYPES:
            known = sorted(LAYER_TYPES)
            raise ModelFileError(path, f"unknown layer type {layer_type!r}; known: {known}")
    return layer_specs, input_shape, settings


def _read_provenance(path: Path, arrays: dict) -> tuple[dict, np.ndarray | None]:
    """The provenance (a JSON object) and the training fingerprint (1-D uint64), if stored."""
    try:
        provenance = json.loads(str(arrays.pop("provenance", "{}")))
    except json.JSONDecodeError as error:
        raise ModelFileError(path, f"its provenance is unreadable ({error})") from None
    if not isinstance(provenance, dict):
        raise ModelFileError(path, "its provenance must be a JSON object")
    train_fingerprint = arrays.pop("train_fingerprint", None)
    if train_fingerprint is not None and (
        train_fingerprint.ndim != 1 or train_fingerprint.dtype != np.uint64
    ):
        raise ModelFileError(path, "train_fingerprint must be a 1-D array of uint64 hashes")
    return provenance, train_fingerprint


def _check_parameter_shapes(path: Path, layer_specs: list, stored: dict) -> None:
    """Compare the shapes the architecture needs with the stored arrays, before building any
    layer: a tampered architecture must not make us allocate terabytes."""
    needed = {}
    for index, (layer_type, config) in enumerate(layer_specs):
        try:
            shapes = LAYER_TYPES[layer_type].parameter_shapes(**config)
        except (TypeError, ValueError) as error:
            raise ModelFileError(path, f"layer {index} ({layer_type}): {error}") from None
        needed.update({f"layer{index}.{key}": shape for key, shape in shapes.items()})
    missing, unexpected = sorted(set(needed) - set(stored)), sorted(set(stored) - set(needed))
    if missing or unexpected:
        raise ModelFileError(path, f"missing parameters {missing}, unexpected entries {unexpected}")
    for name, shape in needed.items():
        value = stored[name]
        if value.shape != tuple(shape):
            raise ModelFileError(
                path, f"{name} has shape {value.shape}, the architecture needs {tuple(shape)}"
            )
        if not np.issubdtype(value.dtype, np.floating) or not np.isfinite(value).all():
            raise ModelFileError(path, f"{name} must hold finite floating-point numbers")


def _build(path: Path, layer_specs: list, input_shape: list) -> Model:
    layers: list[Layer] = []
    for layer_type, config in layer_specs:
        try:
            layers.append(LAYER_TYPES[layer_type](**config))
        except (TypeError, ValueError) as error:
            raise ModelFileError(
                path, f"cannot rebuild layer {layer_type} from {config}: {error}"
            ) from None
    try:
        return Model(layers, input_shape=input_shape)
    except (TypeError, ValueError) as error:
        raise ModelFileError(path, f"the layers do not fit together ({error})") from None
