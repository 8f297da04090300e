"""Model: construction, whole-network gradients, inference entry points, input checks,
summary, and the builders (build_mlp, build_model). Saving and loading: test_model_file.py."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.activations import ReLU, Softmax
from mnist_nn.builders import build_cnn, build_mlp, build_model, image_shape
from mnist_nn.conv import Conv2D, Flatten
from mnist_nn.gradcheck import check_model
from mnist_nn.layers import Dense, Dropout
from mnist_nn.losses import SoftmaxCrossEntropy
from mnist_nn.model import Model
from mnist_nn.preprocess import normalize
from mnist_nn.settings import Settings

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (50, 28, 28), dtype=np.uint8)
LABELS = rng.integers(0, 10, 50).astype(np.uint8)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_whole_three_layer_network_passes_gradient_check(activation):
    model = build_mlp(
        (5, 4), n_inputs=6, n_classes=3, activation=activation, seed=1, dtype=np.float64
    )
    for layer in model.layers:  # nonzero biases so their gradients are checked too
        if "b" in layer.params:
            layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape) * 0.1
    X = rng.standard_normal((8, 6))
    errors = check_model(model, X, rng.integers(0, 3, 8))
    assert len(errors) == 6
    assert max(errors.values()) < 1e-6, errors


def test_build_mlp_structure_summary_and_parameters():
    model = build_mlp((32, 16))
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
    text = model.summary()
    assert "25,818" in text and "(N, 16)" in text and "Dense(784, 32, he)" in text
    with_dropout = build_mlp((32,), activation="tanh", dropout=0.2)
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
    with pytest.raises(ValueError, match="unknown activation 'gelu'.*relu"):
        build_mlp(activation="gelu")
    with pytest.raises(ValueError, match="n_inputs and n_classes must be at least 1"):
        build_mlp((), n_classes=0)
    with pytest.raises(ValueError, match="hidden_sizes must be at least 1"):
        build_mlp((32, 0))


def test_uint8_images_give_the_same_results_as_scaled_floats():
    model = build_mlp((16,), seed=0)
    floats = normalize(IMAGES)
    assert np.array_equal(model.predict_proba(IMAGES), model.predict_proba(floats))
    assert np.array_equal(model.predict(IMAGES), model.predict(floats.reshape(50, 784)))
    assert model.evaluate(IMAGES, LABELS) == model.evaluate(floats, LABELS)


def test_chunked_inference_matches_one_batch():
    model = build_mlp((16,), seed=0, dtype=np.float64)
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
    model = build_mlp((16,), dropout=0.5)
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
    assert build_mlp((8,)).predict(standardised).shape == (50,)


@pytest.mark.parametrize("images, message", BAD_IMAGES)
def test_bad_images_are_rejected_with_a_clear_message(images, message):
    model = build_mlp((8,))
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
        build_mlp((8,)).evaluate(IMAGES, labels)


def test_building_a_model_leaves_the_callers_layers_unchanged():
    first, last = Dense(4, 3, dtype=np.float64), Dense(3, 2, dtype=np.float64)
    model = Model([first, ReLU(), last])
    X, dout = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))
    first.forward(X)
    dX = first.backward(dout)  # used on its own, the layer still gives its input gradient
    assert dX is not None and np.allclose(dX, dout @ first.params["W"].T)
    # The model trains that same layer: the whole-network gradient is still right.
    errors = check_model(model, X, rng.integers(0, 2, 5))
    assert max(errors.values()) < 1e-6, errors


class OffsetLoss(SoftmaxCrossEntropy):
    """The cross-entropy plus one: easy to recognise in a result."""

    def forward(self, Z, y):
        return super().forward(Z, y) + 1.0


@pytest.mark.parametrize("batch_size", [None, 7])
def test_evaluate_uses_the_models_own_loss_function(batch_size):
    model = build_mlp((8,), seed=0, dtype=np.float64)
    loss, accuracy = model.evaluate(IMAGES, LABELS, batch_size=batch_size)
    model.loss_function = OffsetLoss()
    offset_loss, same_accuracy = model.evaluate(IMAGES, LABELS, batch_size=batch_size)
    assert offset_loss == pytest.approx(loss + 1.0, rel=1e-12) and same_accuracy == accuracy


def same_weights(a: Model, b: Model) -> bool:
    return all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights(), strict=True))


def test_build_model_builds_the_mlp_the_settings_describe():
    settings = Settings(hidden_sizes=(16,), activation="tanh", dropout=0.1, seed=2)
    model = build_model(settings, (28, 28), n_classes=3)
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Tanh", "Dropout", "Dense"]
    assert model.input_shape == (784,) and model.n_classes == 3
    assert model.settings == settings
    reference = build_mlp((16,), n_classes=3, activation="tanh", dropout=0.1, seed=2)
    assert same_weights(model, reference)  # the initial weights follow from settings.seed
    assert not same_weights(model, build_model(settings.replace(seed=3), (784,), 3))


def test_build_model_builds_the_cnn_the_settings_describe():
    settings = Settings(model="cnn", n_filters=(2,), seed=1)
    model = build_model(settings, (784,), n_classes=10)  # flat pixels of square images
    assert model.input_shape == (1, 28, 28) and model.settings == settings
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense",
    ]  # fmt: skip
    assert same_weights(model, build_cnn((2,), seed=1))
    with pytest.raises(ValueError, match="5 conv blocks, too many for 28x28 images"):
        build_model(settings.replace(n_filters=(2, 2, 2, 2, 2)), (28, 28), 10)


@pytest.mark.parametrize(
    "sample_shape, expected",
    [((28, 28), (1, 28, 28)), ((3, 8, 6), (3, 8, 6)), ((784,), (1, 28, 28)), ((16,), (1, 4, 4))],
)
def test_image_shape(sample_shape, expected):
    assert image_shape(sample_shape) == expected


@pytest.mark.parametrize("sample_shape", [(10,), (0,), (2, 3, 4, 5)])
def test_image_shape_refuses_what_is_not_an_image(sample_shape):
    with pytest.raises(ValueError, match="cannot tell the image size"):
        image_shape(sample_shape)


def test_conv_scratch_arrays_count_against_the_size_bound_and_size_the_chunks():
    # 20 parameters and an 8 x 8 output, but a 200,008 x 200,008 zero-padded input per image.
    conv = Conv2D(1, 2, 3, stride=28_572, padding=100_000)
    with pytest.raises(ValueError, match=r"up to Conv2D\(.*scratch arrays would hold 40,003,"):
        Model([conv, Flatten(), Dense(128, 10)], input_shape=(1, 8, 8))
    with pytest.raises(ValueError, match="input_shape must be sizes of at least 1"):
        Model([Flatten(), Dense(784, 10)], input_shape=(-1, -784))
    model = build_cnn()  # its second conv's im2col rows: 14 * 14 * 5 * 5 * 16 values per image
    assert model.scratch[3] == 18 * 18 * 16 + 14 * 14 * 25 * 16
    chunks = [len(Z) for _, Z in model._logit_chunks(np.zeros((300, 1, 28, 28), np.float32), None)]
    assert chunks == [128, 128, 44]  # as many as before im2col was counted
    kernel_11 = Model([Conv2D(1, 8, 11, padding=5), Flatten(), Dense(8 * 784, 10)], (1, 28, 28))
    assert max(kernel_11.scratch) == 38 * 38 + 784 * 121
    sizes = [len(Z) for _, Z in kernel_11._logit_chunks(np.zeros((300, 1, 28, 28)), None)]
    assert sizes[0] == 8 * 2048 * 784 // (38 * 38 + 784 * 121)  # bounded by the im2col rows


def test_the_builders_old_address_still_works():
    import mnist_nn.builders as builders
    from mnist_nn.model import build_cnn as old_build_cnn
    from mnist_nn.model import build_mlp as old_build_mlp

    assert old_build_mlp is builders.build_mlp and old_build_cnn is builders.build_cnn
    with pytest.raises(ImportError, match="build_rnn"):
        from mnist_nn.model import build_rnn  # noqa: F401
