"""Saving and loading models (model_file): exact round trips with the settings, atomic
writes, version-1 files, and clear refusals of damaged, tampered or foreign files."""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile

import numpy as np
import pytest

import mnist_nn
from mnist_nn.activations import LeakyReLU, ReLU
from mnist_nn.builders import build_mlp, build_model
from mnist_nn.conv import Conv2D, Flatten, MaxPool2D
from mnist_nn.layers import Dense, Dropout
from mnist_nn.model import Model
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


def test_a_save_removes_what_a_killed_save_left_behind(tmp_path):
    orphan = tmp_path / ".model.npz.k2j4_x9a.tmp"  # a save killed mid-write, long ago
    orphan.write_bytes(b"partial")
    os.utime(orphan, (0, 0))
    recent = tmp_path / ".other.npz.abcd1234.tmp"  # perhaps another save, still running
    recent.write_bytes(b"partial")
    build_mlp((8,)).save(tmp_path / "model.npz")
    assert sorted(os.listdir(tmp_path)) == [recent.name, "model.npz"]


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
        r"needs 100,000,010,000,090 parameters, more than the 200,000,000 a model file may hold",
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


def small_cnn() -> Model:
    """A 4 KB model with every kind of layer that has a config: conv, pool, dropout, dense."""
    layers = [Conv2D(1, 2, 3, padding=1), LeakyReLU(0.1), MaxPool2D(2), Flatten()]
    return Model([*layers, Dropout(0.1), Dense(2 * 4 * 4, 3)], input_shape=(1, 8, 8))


def npy_bytes(array: np.ndarray | None = None, header: dict | None = None, data=b"") -> bytes:
    """An .npy member: an array's, or a hand-written header followed by `data`."""
    buffer = io.BytesIO()
    if array is not None:
        np.save(buffer, array)
    else:
        np.lib.format.write_array_header_1_0(buffer, header)
        buffer.write(data)
    return buffer.getvalue()


def replace_entry(path, name: str, content: bytes, compression=zipfile.ZIP_STORED) -> None:
    """Rewrite the zip at `path` with entry `name` (e.g. "provenance.npy") set to `content`."""
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: archive.read(info) for info in archive.infolist()}
    entries[name] = content
    with zipfile.ZipFile(path, "w") as archive:
        for entry, data in entries.items():
            archive.writestr(entry, data, compress_type=compression)


def test_a_zip_bomb_entry_is_refused_before_it_is_inflated(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    zeros = npy_bytes(np.zeros(2**24, dtype=np.uint64))  # 128 MB that deflate to 128 KB
    for name, message in [("provenance.npy", "inflates to"), ("extra.npy", "unexpected")]:
        replace_entry(path, name, zeros, zipfile.ZIP_DEFLATED)
        tracemalloc.start()
        try:
            with pytest.raises(ModelFileError, match=message):
                load_model(path)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert peak < 8 * 2**20, f"load_model allocated up to {peak / 2**20:.0f} MB for {name}"
        replace_entry(path, name, npy_bytes(np.array("{}")))
        if name == "extra.npy":
            with zipfile.ZipFile(path) as archive:
                assert "extra.npy" in archive.namelist()


def test_a_header_declaring_a_huge_array_is_refused_before_reading(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    header = {"descr": "<f4", "fortran_order": False, "shape": (10**6, 10**6)}  # 4 TB
    replace_entry(path, "param:layer0.W.npy", npy_bytes(header=header, data=b"\0" * 64))
    with pytest.raises(ModelFileError, match=r"layer0.W has shape \(1000000, 1000000\)"):
        load_model(path)


def test_an_entry_shorter_than_its_header_says_is_refused(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    header = {"descr": "<f4", "fortran_order": False, "shape": (8,)}
    replace_entry(path, "param:layer0.b.npy", npy_bytes(header=header, data=b"\0" * 16))
    with pytest.raises(
        ModelFileError,
        match="'param:layer0.b' is 144 bytes by the zip directory, 160 by its .npy header",
    ):
        load_model(path)


def test_integer_weights_and_unknown_npy_versions_are_refused(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    replace_entry(path, "param:layer0.b.npy", npy_bytes(np.zeros(8, dtype=np.int32)))
    with pytest.raises(ModelFileError, match="layer0.b must hold floating-point numbers"):
        load_model(path)
    future_npy = bytearray(npy_bytes(np.zeros(8, dtype=np.float32)))
    future_npy[6] = 9  # the major version byte after the magic string
    replace_entry(path, "param:layer0.b.npy", bytes(future_npy))
    with pytest.raises(ModelFileError, match="unknown .npy version 9"):
        load_model(path)


@pytest.mark.parametrize(
    "header, message",
    [
        ({"descr": "<U0", "shape": ()}, "itemsize cannot be zero"),
        ({"descr": [("text", "O")], "shape": ()}, "holds Python objects"),  # inside a record
        (
            {"descr": "<U5", "shape": (-1,)},
            "128 bytes by the zip directory, 108 by its .npy header",
        ),
    ],
)
def test_crafted_npy_headers_of_the_description_are_refused(tmp_path, header, message):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    replace_entry(path, "architecture.npy", npy_bytes(header={**header, "fortran_order": False}))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_an_unsupported_zip_compression_method_is_a_model_file_error(tmp_path):
    data = bytearray(build_mlp((8,)).save(tmp_path / "model.npz").read_bytes())
    # The method field of the first local header (offset 8) and its central-directory entry
    # (offset 10): 99 is AES encryption, which zipfile cannot read.
    data[8] = 99
    data[data.index(b"PK\x01\x02") + 10] = 99
    path = tmp_path / "encrypted.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ModelFileError, match="truncated or corrupted"):
        load_model(path)


@pytest.mark.parametrize(
    "architecture, message",
    [
        ("[" * 100_000 + "]" * 100_000, "not valid JSON"),  # RecursionError in json
        ('{"input_shape": [Infinity], "layers": []}', "description is unreadable"),
        (
            '{"input_shape": [784], "layers": [{"type": "Dense", "config": '
            '{"n_inputs": Infinity, "n_outputs": 10}}]}',
            r"layer 0 \(Dense\)",
        ),
        (
            '{"input_shape": [-1, -784], "layers": [{"type": "Flatten", "config": {}}, {"type": '
            '"Dense", "config": {"n_inputs": 784, "n_outputs": 10}}]}',
            "input_shape must be",
        ),
    ],
)
def test_crafted_descriptions_are_model_file_errors(tmp_path, architecture, message):
    path = Model([Flatten(), Dense(784, 10)], input_shape=(28, 28)).save(tmp_path / "model.npz")
    rewrite(path, lambda a: a.update(architecture=np.array(architecture)))
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_provenance_that_is_not_json_is_refused(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    rewrite(path, lambda a: a.update(provenance=np.array("{oops")))
    with pytest.raises(ModelFileError, match="'provenance' is not valid JSON"):
        load_model(path)


def test_a_future_version_says_to_upgrade(tmp_path):
    path = build_mlp((8,)).save(tmp_path / "model.npz")
    rewrite(path, lambda a: a.update(format_version=np.array(FORMAT_VERSION + 1)))
    with pytest.raises(ModelFileError, match="a newer mnist_nn wrote it: upgrade mnist_nn"):
        load_model(path)


def test_a_conv_config_that_asks_for_huge_scratch_arrays_is_refused(tmp_path):
    # 20 parameters, but padding 100,000 would zero-pad each 8x8 image to 200,008 x 200,008;
    # the stride keeps the output 8 x 8, so the layers still fit together.
    path = small_cnn().save(tmp_path / "model.npz")
    huge = {"padding": 100_000, "stride": 28_572}
    rewrite(
        path, lambda a: set_architecture(a, lambda arch: arch["layers"][0]["config"].update(huge))
    )
    with pytest.raises(ModelFileError, match="scratch arrays would hold 40,003,200,832 values"):
        load_model(path)


def test_byte_flips_and_truncations_give_a_working_model_or_a_model_file_error(tmp_path):
    model = small_cnn()
    data = model.save(tmp_path / "model.npz").read_bytes()
    X = np.random.default_rng(1).random((4, 1, 8, 8))
    fuzz = np.random.default_rng(12)
    path = tmp_path / "damaged.npz"
    n_loaded = 0
    for trial in range(1500):
        position = int(fuzz.integers(len(data)))
        if trial % 10 == 0:
            damaged = data[:position]
        else:
            damaged = bytearray(data)
            damaged[position] ^= int(fuzz.integers(1, 256))
        path.write_bytes(bytes(damaged))
        try:
            loaded = load_model(path)
        except ModelFileError:
            continue
        assert np.isfinite(loaded.predict_proba(X)).all(), f"trial {trial}, byte {position}"
        n_loaded += 1
    assert 0 < n_loaded < 1500  # some flips hit nothing that matters (e.g. a zip timestamp)


def test_a_model_that_costs_too_many_multiply_adds_per_image_is_refused(tmp_path):
    # 410,000 parameters, but applied at every one of 28 x 28 positions: 322 million
    # multiply-adds per image, about 2 s per picture.
    layers = [Conv2D(1, 64, 5, padding=2), ReLU(), Conv2D(64, 256, 5, padding=2), Flatten()]
    model = Model([*layers, Dense(256 * 28 * 28, 1)], input_shape=(1, 28, 28))
    path = model.save(tmp_path / "model.npz")
    message = r"322,581,504 multiply-adds per image \(321,126,400 in Conv2D\(n_channels=64"
    with pytest.raises(ModelFileError, match=message):
        load_model(path)


def test_the_work_bound_counts_what_the_layers_compute(tmp_path, monkeypatch):
    import mnist_nn.model_file

    path = small_cnn().save(tmp_path / "model.npz")
    # conv: 2 x 3 x 3 weights at 8 x 8 positions; dense: 32 x 3
    monkeypatch.setattr(mnist_nn.model_file, "MAX_MULTIPLY_ADDS_PER_SAMPLE", 1152 + 96)
    load_model(path)
    monkeypatch.setattr(mnist_nn.model_file, "MAX_MULTIPLY_ADDS_PER_SAMPLE", 1152 + 95)
    with pytest.raises(ModelFileError, match="1,248 multiply-adds per image"):
        load_model(path)


def test_a_model_with_thousands_of_layers_is_refused_before_it_is_built(tmp_path):
    path = Model([Dense(784, 10), *[ReLU() for _ in range(1_000)]]).save(tmp_path / "model.npz")
    with pytest.raises(ModelFileError, match="1,001 layers, more than the 1,000"):
        load_model(path)


def test_a_huge_pooling_window_stays_cheap_per_image(tmp_path):
    # The crafted 3.6 KB file of the fault-injection pass: a 1x1 conv padded by 394, then one
    # max-pool over the whole 816 x 816 image. It loads (its work is small) and predicts.
    layers = [Conv2D(1, 1, 1, padding=394), MaxPool2D(816), Flatten(), Dense(1, 10)]
    path = Model(layers, input_shape=(1, 28, 28)).save(tmp_path / "model.npz")
    model = load_model(path)
    assert sum(model.multiply_adds_per_sample()) == 816 * 816 + 10
    assert model.predict(IMAGES[:2]).shape == (2,)


def test_a_kernel_with_too_many_offsets_is_refused(tmp_path):
    # 101 x 101 weights over a padded image: 4 output positions, cheap forward, but a gradient
    # (a saliency map) would take 10,201 Python steps per chunk of images.
    layers = [Conv2D(1, 1, 101, padding=37), Flatten(), Dense(4, 10)]
    path = Model(layers, input_shape=(1, 28, 28)).save(tmp_path / "model.npz")
    with pytest.raises(ModelFileError, match="10,201 offsets, more than the 10,000"):
        load_model(path)
