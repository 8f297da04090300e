"""Saving and loading models (model_file): exact round trips with the settings, atomic
writes, version-1 files, and clear refusals of damaged, tampered or foreign files."""

from __future__ import annotations

import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest

import mnist_nn
from mnist_nn.activations import ReLU
from mnist_nn.layers import Dense
from mnist_nn.model import Model, build_mlp, build_model
from mnist_nn.model_file import FORMAT_VERSION, ModelFileError, load_model, save_model
from mnist_nn.settings import Settings

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)


def assert_same_model(a: Model, b: Model) -> None:
    assert a.architecture() == b.architecture()
    for (name, p), (other, q) in zip(
        a.named_parameters().items(), b.named_parameters().items(), strict=True
    ):
        assert name == other and p.dtype == q.dtype and np.array_equal(p, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_exact(tmp_path, dtype):
    model = build_mlp((12, 8), activation="leaky_relu", dropout=0.1, seed=5, dtype=dtype)
    for param, _ in model.parameters():
        param += rng.standard_normal(param.shape).astype(dtype)  # not just the initial weights
    path = model.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    loaded = load_model(path)
    assert_same_model(model, loaded)
    assert loaded.settings == model.settings
    assert np.array_equal(loaded.predict_proba(IMAGES), model.predict_proba(IMAGES))
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["architecture"]))["layers"][0]["type"] == "Dense"
        assert int(archive["format_version"]) == FORMAT_VERSION == 2


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    model = build_mlp((8,))
    path = model.save(tmp_path / "model.npz")
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        build_mlp((8,), seed=1).save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["model.npz"]


def rewrite(path, change):
    """Load the raw arrays of a saved model, change them, write them back."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = dict(archive)
    change(arrays)
    with open(path, "wb") as file:
        np.savez(file, **arrays)


def set_architecture(arrays, edit):
    architecture = json.loads(str(arrays["architecture"]))
    edit(architecture)
    arrays["architecture"] = np.array(json.dumps(architecture))


BAD_FILES = {
    "wrong version": (lambda a: a.update(format_version=np.array(99)), "format version 99"),
    "no version": (lambda a: a.pop("format_version"), "'format_version' is missing"),
    "missing weights": (lambda a: a.pop("param:layer2.W"), r"missing parameters \['layer2.W'\]"),
    "renamed weights": (
        lambda a: a.update({"param:layer2.V": a.pop("param:layer2.W")}),
        r"missing parameters \['layer2.W'\], unexpected entries \['layer2.V'\]",
    ),
    "extra entry": (lambda a: a.update(extra=np.zeros(2)), r"unexpected entries \['extra'\]"),
    "wrong shape": (lambda a: a.update({"param:layer0.b": np.zeros(30)}), "shape"),
    "NaN weights": (lambda a: a["param:layer0.W"].fill(np.nan), "finite"),
    "unknown layer": (
        lambda a: set_architecture(a, lambda arch: arch["layers"][1].update(type="Swish")),
        "unknown layer type 'Swish'",
    ),
    "bad config": (
        lambda a: set_architecture(a, lambda arch: arch.update(input_shape=[5])),
        "do not fit together",
    ),
    "config disagrees with the weights": (
        lambda a: set_architecture(a, lambda arch: arch["layers"][0]["config"].update(n_inputs=5)),
        r"layer0.W has shape \(784, 8\), the architecture needs \(5, 8\)",
    ),
    "huge layer": (  # checked before anything is allocated (this would be 400 TB)
        lambda a: set_architecture(
            a, lambda arch: arch["layers"][0]["config"].update(n_inputs=10**7, n_outputs=10**7)
        ),
        r"the architecture needs \(10000000, 10000000\)",
    ),
    "config missing a size": (
        lambda a: set_architecture(a, lambda arch: arch["layers"][0]["config"].pop("n_outputs")),
        r"layer 0 \(Dense\)",
    ),
    "config a layer cannot take": (
        lambda a: set_architecture(a, lambda arch: arch["layers"][1]["config"].update(alpha=2)),
        "cannot rebuild layer ReLU",
    ),
    "config of the wrong type": (
        lambda a: set_architecture(a, lambda arch: arch["layers"][0].update(config=[784, 8])),
        "description is unreadable",
    ),
    "bad json": (
        lambda a: a.update(architecture=np.array("{not json")),
        "description is unreadable",
    ),
    "bad settings": (
        lambda a: a.update(settings=np.array(json.dumps({"epochs": 3}))),
        r"description is unreadable.*unknown setting\(s\) \['epochs'\]",
    ),
    "pickled object": (
        lambda a: a.update(architecture=np.array([{"evil": 1}], dtype=object)),
        "cannot be loaded safely",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_mismatched_files_are_rejected(tmp_path, case):
    change, message = BAD_FILES[case]
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    if case == "pickled object":  # np.savez needs pickle to write it; load must refuse it
        with np.load(path) as archive:
            arrays = dict(archive)
        change(arrays)
        np.savez(path, **arrays)
    else:
        rewrite(path, change)
    with pytest.raises(ValueError, match=message):
        load_model(path)


def test_truncated_and_tampered_files_are_rejected(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    data = path.read_bytes()
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_model(truncated)
    # Flip bytes inside the first weight matrix: the zip checksum no longer matches.
    tampered = tmp_path / "tampered.npz"
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("param:layer0.W.npy")
    middle = info.header_offset + 200 + info.compress_size // 2
    tampered.write_bytes(
        data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 8]) + data[middle + 8 :]
    )
    with pytest.raises(ValueError, match="truncated or corrupted"):
        load_model(tampered)
    not_a_model = tmp_path / "notes.npz"
    not_a_model.write_text("hello")
    with pytest.raises(ValueError, match="not a valid mnist_nn model file: it is not an .npz"):
        load_model(not_a_model)
    single_array = tmp_path / "array.npz"
    with open(single_array, "wb") as file:
        np.save(file, np.zeros(3))  # an .npy file under an .npz name
    with pytest.raises(ValueError, match="it is not an .npz archive"):
        load_model(single_array)
    with pytest.raises(FileNotFoundError):
        load_model(tmp_path / "missing.npz")


def test_huge_layer_is_refused_before_anything_is_built(tmp_path):
    # 10,000 x 10,000 weights (400 MB) would fit in memory; they must not even be allocated.
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    huge = {"n_inputs": 10_000, "n_outputs": 10_000}
    rewrite(
        path, lambda a: set_architecture(a, lambda arch: arch["layers"][0]["config"].update(huge))
    )
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match="the architecture needs"):
            load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"load_model allocated up to {peak / 2**20:.0f} MB"


def test_settings_are_saved_and_load_back_equal(tmp_path):
    settings = Settings(hidden_sizes=(12,), activation="tanh", dropout=0.1, n_epochs=3, seed=4)
    model = build_model(settings, (28, 28), 10)
    loaded = load_model(save_model(model, tmp_path / "model.npz"))
    assert loaded.settings == settings
    assert_same_model(model, loaded)
    # A model put together by hand has no settings, and loads without them.
    by_hand = Model([Dense(784, 4), ReLU(), Dense(4, 10)])
    assert load_model(by_hand.save(tmp_path / "by_hand.npz")).settings is None


def test_version_1_files_without_settings_still_load(tmp_path):
    model = build_mlp((8,), seed=3)
    path = tmp_path / "old.npz"
    np.savez(
        path,
        format_version=np.array(1),
        architecture=np.array(json.dumps(model.architecture())),
        **{f"param:{name}": param for name, param in model.named_parameters().items()},
    )
    loaded = load_model(path)
    assert loaded.settings is None
    assert_same_model(model, loaded)
    assert np.array_equal(loaded.predict_proba(IMAGES), model.predict_proba(IMAGES))


def test_entry_points_and_error_type(tmp_path):
    assert mnist_nn.load_model is load_model
    assert issubclass(ModelFileError, ValueError)
    path = tmp_path / "model.npz"
    assert build_mlp((8,)).save(path) == path  # Model.save writes the same file format
    assert_same_model(build_mlp((8,)), load_model(str(path)))
