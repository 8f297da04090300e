"""Model: construction, whole-network gradients, inference entry points, input checks,
summary, and save/load."""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import pytest

from mnist_nn.activations import ReLU, Softmax
from mnist_nn.gradcheck import check_model
from mnist_nn.layers import Dense, Dropout
from mnist_nn.model import Model, build_mlp, load_model
from mnist_nn.preprocess import normalize

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
LABELS = rng.integers(0, 10, 50).astype(np.uint8)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_whole_three_layer_network_passes_gradient_check(activation):
    model = build_mlp([6, 5, 4, 3], activation=activation, seed=1, dtype=np.float64)
    for layer in model.layers:  # nonzero biases so their gradients are checked too
        if "b" in layer.params:
            layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape) * 0.1
    X = rng.standard_normal((8, 6))
    errors = check_model(model, X, rng.integers(0, 3, 8))
    assert len(errors) == 6
    assert max(errors.values()) < 1e-6, errors


def test_build_mlp_structure_summary_and_parameters():
    model = build_mlp([784, 32, 16, 10])
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "ReLU",
        "Dense",
        "ReLU",
        "Dense",
    ]
    assert model.n_params == 784 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10 == 25_818
    assert model.dtype == np.float32 and model.n_classes == 10
    assert len(model.parameters()) == 6
    assert model.layers[0].needs_input_grad is False  # the images need no gradient
    text = model.summary()
    assert "25,818" in text and "(N, 16)" in text and "Dense(784, 32, he)" in text
    with_dropout = build_mlp([784, 32, 10], activation="tanh", dropout=0.2)
    assert [type(layer).__name__ for layer in with_dropout.layers] == [
        "Dense",
        "Tanh",
        "Dropout",
        "Dense",
    ]
    assert with_dropout.layers[0].init == "glorot"


def test_build_mlp_is_seeded():
    first, second = build_mlp(seed=3), build_mlp(seed=3)
    for (a, _), (b, _) in zip(first.parameters(), second.parameters(), strict=True):
        assert np.array_equal(a, b)
    assert not np.array_equal(build_mlp(seed=4).parameters()[0][0], first.parameters()[0][0])


def test_model_from_explicit_layers_and_bad_constructions():
    model = Model([Dense(4, 3), ReLU(), Dropout(0.1), Dense(3, 2)])
    assert model.input_shape == (4,) and model.shapes[-1] == (2,)
    with pytest.raises(ValueError, match="expects inputs of shape"):
        Model([Dense(4, 3), Dense(5, 2)])
    with pytest.raises(ValueError, match="logits, not Softmax"):
        Model([Dense(4, 3), Softmax()])
    with pytest.raises(ValueError, match="unknown hidden activation 'gelu'.*relu"):
        build_mlp(activation="gelu")
    with pytest.raises(ValueError, match="at least an input and an output"):
        build_mlp([784])


def test_uint8_images_give_the_same_results_as_scaled_floats():
    model = build_mlp([784, 16, 10], seed=0)
    floats = normalize(IMAGES)
    assert np.array_equal(model.predict_proba(IMAGES), model.predict_proba(floats))
    assert np.array_equal(model.predict(IMAGES), model.predict(floats.reshape(50, 784)))
    assert model.evaluate(IMAGES, LABELS) == model.evaluate(floats, LABELS)


def test_chunked_inference_matches_one_batch():
    model = build_mlp([784, 16, 10], seed=0, dtype=np.float64)
    P = model.predict_proba(IMAGES)
    assert P.shape == (50, 10) and P.dtype == np.float64
    assert np.allclose(P.sum(axis=1), 1.0)
    assert np.allclose(model.predict_proba(IMAGES, batch_size=7), P, rtol=1e-12)
    assert np.array_equal(model.predict(IMAGES, batch_size=7), P.argmax(axis=1))
    loss, accuracy = model.evaluate(IMAGES, LABELS, batch_size=7)
    expected_loss = -np.mean(np.log(P[np.arange(50), LABELS]))
    assert loss == pytest.approx(expected_loss, rel=1e-9)
    assert accuracy == np.mean(P.argmax(axis=1) == LABELS)


def test_inference_is_deterministic_with_dropout():
    model = build_mlp([784, 16, 10], dropout=0.5)
    assert np.array_equal(model.predict_proba(IMAGES), model.predict_proba(IMAGES))


BAD_IMAGES = [
    (IMAGES.reshape(50, 28 * 28)[:, :700], "shape"),
    (IMAGES[0], "shape"),
    (IMAGES.astype(np.int64), "dtype int64"),
    (IMAGES.astype(np.float16), "dtype float16"),
    (np.zeros((0, 28, 28), np.uint8), "empty"),
    (np.where(IMAGES > 250, np.nan, normalize(IMAGES)), "NaN or inf"),
    (np.where(IMAGES > 250, np.inf, normalize(IMAGES)), "NaN or inf"),
    (IMAGES.astype(np.float32), "values up to 255, .*divide by 255"),
]


def test_standardised_float_inputs_are_accepted():
    standardised = (normalize(IMAGES) - 0.13) / 0.31  # values from about -0.4 to 2.8
    assert build_mlp([784, 8, 10]).predict(standardised).shape == (50,)


@pytest.mark.parametrize("images, message", BAD_IMAGES)
def test_bad_images_are_rejected_with_a_clear_message(images, message):
    model = build_mlp([784, 8, 10])
    for call in (model.predict, model.predict_proba):
        with pytest.raises(ValueError, match=message):
            call(images)
    with pytest.raises(ValueError, match=message):
        model.evaluate(images, LABELS[: len(images)] if len(images) <= 50 else LABELS)


@pytest.mark.parametrize(
    "labels, message",
    [
        (np.full(50, 10), r"0\.\.9.*from 10 to 10"),
        (np.full(50, -1), r"0\.\.9"),
        (LABELS[:49], "50 images but 49 labels"),
        (LABELS.astype(np.float64), "integers"),
        (np.eye(10)[LABELS].astype(int), "1-D"),
    ],
)
def test_bad_labels_are_rejected_with_a_clear_message(labels, message):
    with pytest.raises(ValueError, match=message):
        build_mlp([784, 8, 10]).evaluate(IMAGES, labels)


def assert_same_model(a: Model, b: Model) -> None:
    assert a.architecture() == b.architecture()
    for (name, p), (other, q) in zip(
        a.named_parameters().items(), b.named_parameters().items(), strict=True
    ):
        assert name == other and p.dtype == q.dtype and np.array_equal(p, q)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_round_trip_is_exact(tmp_path, dtype):
    model = build_mlp([784, 12, 8, 10], activation="leaky_relu", dropout=0.1, seed=5, dtype=dtype)
    for param, _ in model.parameters():
        param += rng.standard_normal(param.shape).astype(dtype)  # not just the initial weights
    path = model.save(tmp_path / "model.npz")
    assert os.listdir(tmp_path) == ["model.npz"]  # no temporary file left behind
    loaded = load_model(path)
    assert_same_model(model, loaded)
    assert np.array_equal(loaded.predict_proba(IMAGES), model.predict_proba(IMAGES))
    with np.load(path, allow_pickle=False) as archive:
        assert json.loads(str(archive["architecture"]))["layers"][0]["type"] == "Dense"


def test_failed_save_keeps_the_old_file(tmp_path, monkeypatch):
    model = build_mlp([784, 8, 10])
    path = model.save(tmp_path / "model.npz")
    before = path.read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        build_mlp([784, 8, 10], seed=1).save(path)
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
        lambda a: set_architecture(a, lambda arch: arch["layers"][0]["config"].update(n_inputs=5)),
        "do not fit together",
    ),
    "huge layer": (  # checked before anything is allocated (this would be 400 TB)
        lambda a: set_architecture(
            a, lambda arch: arch["layers"][0]["config"].update(n_inputs=10**7, n_outputs=10**7)
        ),
        "need 100,000,010,000,090 parameter values",
    ),
    "config of the wrong type": (
        lambda a: set_architecture(a, lambda arch: arch["layers"][0].update(config=[784, 8])),
        "architecture description is unreadable",
    ),
    "bad json": (lambda a: a.update(architecture=np.array("{not json")), "architecture"),
    "pickled object": (
        lambda a: a.update(architecture=np.array([{"evil": 1}], dtype=object)),
        "cannot be loaded safely",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_mismatched_files_are_rejected(tmp_path, case):
    change, message = BAD_FILES[case]
    path = build_mlp([784, 8, 10]).save(tmp_path / "model.npz")
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
    path = build_mlp([784, 8, 10]).save(tmp_path / "model.npz")
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
