"""A saved model is one .npz file: a format version, the architecture and the settings as JSON
text, and the parameters. save_model (saving.py) writes it atomically; load_model reads it without
pickle, so a model file can never run code, and checks every size before it allocates anything."""

from __future__ import annotations

import contextlib
import json
import math
import os
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

from mnist_nn.layers import LAYER_TYPES, MAX_LAYER_PARAMETERS, Layer
from mnist_nn.model import Model
from mnist_nn.saving import FORMAT_VERSION, save_model
from mnist_nn.settings import Settings

__all__ = ["FORMAT_VERSION", "ModelFileError", "load_model", "save_model"]

# Version 1 files (no settings, provenance or fingerprint) still load.
READABLE_VERSIONS = (1, 2)
# Bounds checked from the zip directory and the .npy headers before anything is inflated. The
# version, the JSON texts and the training fingerprint (30 KB for MNIST) are far smaller than
# MAX_METADATA_BYTES; a model file may describe at most MAX_MODEL_PARAMETERS parameter values
# (1.6 GB of float64), however its layers share them out.
MAX_METADATA_BYTES = 16 * 2**20
MAX_MODEL_PARAMETERS = 4 * MAX_LAYER_PARAMETERS
# The work a loaded model may cost per image, checked from its shapes before any weight is
# read: multiply-adds (90x build_cnn's 2.8 million; at a few billion a second, 10,000 test
# images then take minutes, not hours), and layers, each a fixed number of NumPy calls per chunk
# of images, where a chunk may be a single image. Memory per image is Model's own bound.
MAX_MULTIPLY_ADDS_PER_SAMPLE = 250_000_000
MAX_LAYERS = 1_000
# ... and kernel offsets: a gradient through Conv2D (a saliency map) adds one block per offset.
MAX_KERNEL_OFFSETS = 10_000
# What zipfile, zlib and numpy's .npy header parser raise for a damaged or crafted file.
_DAMAGED_FILE_ERRORS = (
    zipfile.BadZipFile,
    zipfile.LargeZipFile,
    zlib.error,
    EOFError,
    OSError,
    NotImplementedError,
    RuntimeError,
    SyntaxError,
    tokenize.TokenError,
    OverflowError,
    ValueError,
    TypeError,
)


class ModelFileError(ValueError):
    """A file that is not a valid mnist_nn model (truncated, tampered, foreign or too new)."""

    def __init__(
        self, path: Path, reason: str, advice: str = "save or train the model again"
    ) -> None:
        super().__init__(f"{path} is not a valid mnist_nn model file: {reason}; {advice}")


def load_model(path: str | os.PathLike) -> Model:
    """Rebuild a Model saved with Model.save; a damaged or foreign file raises ModelFileError.

    Each entry's inflated size (from the zip directory) and each array's shape and dtype (from
    its .npy header) are checked before any data are read, so a file can make us allocate no
    more than the model it describes, and that model is bounded (MAX_MODEL_PARAMETERS, and the
    values per image, see model.MAX_VALUES_PER_SAMPLE), as is its work per image
    (MAX_MULTIPLY_ADDS_PER_SAMPLE, MAX_LAYERS, MAX_KERNEL_OFFSETS), checked before any weight
    is read.
    """
    path = Path(path)
    with _open_archive(path) as archive:
        _check_version(path, _read_entry(path, archive, "format_version"))
        layer_specs, input_shape, settings = _read_description(path, archive)
        _check_layer_count(path, layer_specs)
        provenance, train_fingerprint = _read_provenance(path, archive)
        needed = _parameter_shapes(path, layer_specs)
        _check_entry_names(path, archive, needed)
        for name, shape in needed.items():  # every header, before the model allocates anything
            _open_entry(path, archive, f"param:{name}", shape)[0].close()
        model = _build(path, layer_specs, input_shape)
        _check_work(path, model)
        for name, param in model.named_parameters().items():
            np.copyto(param, _read_entry(path, archive, f"param:{name}", param.shape))
    model.settings, model.provenance = settings, provenance
    model.train_fingerprint = train_fingerprint
    return model


@contextlib.contextmanager
def _open_archive(path: Path) -> Iterator[zipfile.ZipFile]:
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    with open(path, "rb") as file:
        if file.read(2) != b"PK":  # every .npz file is a zip archive
            raise ModelFileError(
                path, "it is not an .npz archive", "give a file written by Model.save or `train`"
            )
    with _reading(path):
        archive = zipfile.ZipFile(path)
    with archive:
        yield archive


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """What a damaged file makes zipfile, zlib or numpy's .npy reader raise in the block
    becomes ModelFileError."""
    try:
        yield
    except ModelFileError:
        raise
    except _DAMAGED_FILE_ERRORS as error:
        raise ModelFileError(
            path, f"it is truncated or corrupted ({type(error).__name__}: {error})"
        ) from None


def _open_entry(
    path: Path, archive: zipfile.ZipFile, key: str, shape: tuple[int, ...] | None = None
) -> tuple[IO[bytes], tuple]:
    """Entry `key` opened just past its .npy header, with the (shape, fortran_order, dtype) the
    header gives. Refused, before any data are inflated: a missing entry, Python objects, a size
    that disagrees with the header, and for a parameter (`shape` given) any other shape than
    `shape` or a dtype that is not floating-point; other entries must fit MAX_METADATA_BYTES."""
    if f"{key}.npy" not in archive.namelist():
        raise ModelFileError(path, f"the entry {key!r} is missing")
    info = archive.getinfo(f"{key}.npy")
    # A parameter's size is checked against its header below (exactly what the shape needs).
    if shape is None and info.file_size > MAX_METADATA_BYTES:
        raise ModelFileError(
            path, f"the entry {key!r} inflates to {info.file_size:,} bytes, more than it can need"
        )
    with _reading(path):
        member = archive.open(info)
        major, _ = np.lib.format.read_magic(member)
        if major not in (1, 2):
            raise ModelFileError(path, f"the entry {key!r} is in an unknown .npy version {major}")
        header = getattr(np.lib.format, f"read_array_header_{major}_0")(member)
    stored_shape, _, dtype = header
    if dtype.hasobject:
        raise ModelFileError(
            path, f"the entry {key!r} holds Python objects, which cannot be loaded safely"
        )
    if shape is not None:
        _check_parameter_header(path, key.removeprefix("param:"), stored_shape, dtype, shape)
    expected = member.tell() + math.prod(stored_shape) * dtype.itemsize
    if info.file_size != expected:
        raise ModelFileError(
            path,
            f"the entry {key!r} is {info.file_size:,} bytes by the zip directory, "
            f"{expected:,} by its .npy header",
        )
    return member, header


def _check_parameter_header(path: Path, name: str, stored_shape, dtype, shape) -> None:
    if stored_shape != tuple(shape):
        raise ModelFileError(
            path, f"{name} has shape {stored_shape}, the architecture needs {tuple(shape)}"
        )
    if dtype.kind != "f":
        raise ModelFileError(path, f"{name} must hold floating-point numbers, not {dtype}")


def _read_entry(
    path: Path, archive: zipfile.ZipFile, key: str, shape: tuple[int, ...] | None = None
) -> np.ndarray:
    """The array in entry `key`, checked as _open_entry says; parameters must be finite."""
    member, (stored_shape, fortran_order, dtype) = _open_entry(path, archive, key, shape)
    n_bytes = math.prod(stored_shape) * dtype.itemsize
    with member, _reading(path):
        data = member.read(n_bytes)
        if len(data) != n_bytes or member.read(1):  # reading to the end checks the zip CRC
            raise ModelFileError(path, f"the entry {key!r} ends before or after its data")
        order = "F" if fortran_order else "C"
        array = np.frombuffer(data, dtype).reshape(stored_shape, order=order)
    if shape is not None and not np.isfinite(array).all():
        raise ModelFileError(
            path,
            f"{key.removeprefix('param:')} holds values that are not finite (NaN or infinity)",
            "the training that wrote it diverged: train again with a smaller learning rate",
        )
    return array


def _read_json(path: Path, archive: zipfile.ZipFile, key: str, default: str):
    """The JSON text in entry `key` (default if the entry is absent), parsed."""
    if f"{key}.npy" not in archive.namelist():
        return json.loads(default)
    text = _read_entry(path, archive, key)
    if text.shape != () or text.dtype.kind != "U":
        raise ModelFileError(path, f"the entry {key!r} must be one text")
    try:
        return json.loads(str(text))
    except (ValueError, RecursionError) as error:
        raise ModelFileError(
            path, f"its description is unreadable: {key!r} is not valid JSON ({error})"
        ) from None


def _check_version(path: Path, version: np.ndarray) -> None:
    if version.shape != () or not np.issubdtype(version.dtype, np.integer):
        raise ModelFileError(path, "format_version must be a single integer")
    if int(version) not in READABLE_VERSIONS:
        raise ModelFileError(
            path,
            f"it has format version {int(version)}, this mnist_nn reads versions "
            f"{list(READABLE_VERSIONS)}",
            "a newer mnist_nn wrote it: upgrade mnist_nn to read it",
        )


def _read_description(path: Path, archive: zipfile.ZipFile) -> tuple[list, list, Settings | None]:
    """(layer type, config) pairs, the input shape and the settings, from the JSON entries."""
    if "architecture.npy" not in archive.namelist():
        raise ModelFileError(path, "the entry 'architecture' is missing")
    architecture = _read_json(path, archive, "architecture", "null")
    settings = _read_json(path, archive, "settings", "null")
    try:
        input_shape = [int(size) for size in architecture["input_shape"]]
        layer_specs = [(spec["type"], dict(spec["config"])) for spec in architecture["layers"]]
        settings = None if settings is None else Settings.from_dict(settings)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise ModelFileError(path, f"its description is unreadable ({error})") from None
    for layer_type, _ in layer_specs:
        if layer_type not in LAYER_TYPES:
            known = sorted(LAYER_TYPES)
            raise ModelFileError(path, f"unknown layer type {layer_type!r}; known: {known}")
    return layer_specs, input_shape, settings


def _read_provenance(path: Path, archive: zipfile.ZipFile) -> tuple[dict, np.ndarray | None]:
    """The provenance (a JSON object) and the training fingerprint (1-D uint64), if stored."""
    provenance = _read_json(path, archive, "provenance", "{}")
    if not isinstance(provenance, dict):
        raise ModelFileError(path, "its provenance must be a JSON object")
    if "train_fingerprint.npy" not in archive.namelist():
        return provenance, None
    train_fingerprint = _read_entry(path, archive, "train_fingerprint")
    if train_fingerprint.ndim != 1 or train_fingerprint.dtype != np.uint64:
        raise ModelFileError(path, "train_fingerprint must be a 1-D array of uint64 hashes")
    return provenance, train_fingerprint.copy()


def _parameter_shapes(path: Path, layer_specs: list) -> dict[str, tuple[int, ...]]:
    """The shape of each parameter the architecture needs, before building any layer: a
    tampered architecture must not make us allocate terabytes."""
    needed = {}
    for index, (layer_type, config) in enumerate(layer_specs):
        try:
            shapes = LAYER_TYPES[layer_type].parameter_shapes(**config)
        except (TypeError, ValueError, OverflowError) as error:
            raise ModelFileError(path, f"layer {index} ({layer_type}): {error}") from None
        needed.update({f"layer{index}.{key}": tuple(shape) for key, shape in shapes.items()})
    if any(size < 0 for shape in needed.values() for size in shape):
        raise ModelFileError(path, "the architecture has a negative layer size")
    n_values = sum(math.prod(shape) for shape in needed.values())
    if n_values > MAX_MODEL_PARAMETERS:
        raise ModelFileError(
            path,
            f"its architecture needs {n_values:,} parameters, more than the "
            f"{MAX_MODEL_PARAMETERS:,} a model file may hold",
        )
    return needed


def _check_entry_names(path: Path, archive: zipfile.ZipFile, needed: dict) -> None:
    """The archive holds exactly the parameters the architecture needs, besides the metadata."""
    metadata = {"format_version", "architecture", "settings", "provenance", "train_fingerprint"}
    stored = {name.removesuffix(".npy") for name in archive.namelist()} - metadata
    stored = {name.removeprefix("param:") for name in stored}
    missing, unexpected = sorted(set(needed) - stored), sorted(stored - set(needed))
    if missing or unexpected:
        raise ModelFileError(path, f"missing parameters {missing}, unexpected entries {unexpected}")


def _build(path: Path, layer_specs: list, input_shape: list) -> Model:
    layers: list[Layer] = []
    for layer_type, config in layer_specs:
        try:
            layers.append(LAYER_TYPES[layer_type](**config))
        except (TypeError, ValueError, OverflowError) as error:
            raise ModelFileError(
                path, f"cannot rebuild layer {layer_type} from {config}: {error}"
            ) from None
    try:
        return Model(layers, input_shape=input_shape)
    except (TypeError, ValueError, OverflowError) as error:
        raise ModelFileError(path, f"the layers do not fit together ({error})") from None


def _check_layer_count(path: Path, layer_specs: list) -> None:
    if len(layer_specs) > MAX_LAYERS:
        raise ModelFileError(
            path,
            f"it has {len(layer_specs):,} layers, more than the {MAX_LAYERS:,} a model file may "
            "have (each costs Python steps for every chunk of images)",
            "use a model with fewer layers",
        )


def _check_work(path: Path, model: Model) -> None:
    """Refuse a model whose forward pass costs more than MAX_MULTIPLY_ADDS_PER_SAMPLE per image,
    or whose gradient loops over more than MAX_KERNEL_OFFSETS: a small file (a few weights shared
    over a huge padded image) must not cost hours to run."""
    offsets = sum(getattr(layer, "kernel_size", 0) ** 2 for layer in model.layers)
    if offsets > MAX_KERNEL_OFFSETS:
        raise ModelFileError(
            path,
            f"its convolution kernels have {offsets:,} offsets, more than the "
            f"{MAX_KERNEL_OFFSETS:,} a model file may have (a gradient, as for a saliency map, "
            "takes a Python step for each)",
            "use smaller kernels",
        )
    counts = model.multiply_adds_per_sample()
    if sum(counts) <= MAX_MULTIPLY_ADDS_PER_SAMPLE:
        return
    weighted = [layer for layer in model.layers if "W" in layer.params]
    largest = max(range(len(counts)), key=counts.__getitem__)
    raise ModelFileError(
        path,
        f"its forward pass needs {sum(counts):,} multiply-adds per image ({counts[largest]:,} "
        f"in {weighted[largest]!r}), more than the {MAX_MULTIPLY_ADDS_PER_SAMPLE:,} a model file "
        "may ask",
        "use a smaller model: fewer filters or units, less padding",
    )
