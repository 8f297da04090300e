"""The "why did it read my digit that way?" tools: the saliency map is the true gradient of the
logit (checked by central differences), and the class means and nearest digits are exact."""

import numpy as np
import pytest

import mnist_nn as nn
from mnist_nn import explain, plots
from mnist_nn.synthetic import make_synthetic_digits


@pytest.fixture(scope="module")
def digits():
    return make_synthetic_digits(400, seed=3)


def _logit(model, image, class_index):
    return model.forward(image.reshape(1, *model.input_shape))[0, class_index]


@pytest.mark.parametrize("build", [
    lambda: nn.build_mlp((12,), activation="tanh", seed=1, dtype=np.float64),
    lambda: nn.build_cnn((3,), seed=1, dtype=np.float64),
])  # fmt: skip
def test_saliency_is_the_gradient_of_the_chosen_logit(build, digits):
    model = build()
    # Noise on the page and nonzero biases keep every ReLU and max-pool away from its kinks and
    # ties (a blank page gives exact zeros and equal values), where the derivative is one-sided.
    rng = np.random.default_rng(0)
    image = 0.8 * nn.normalize(digits[0][0], dtype=np.float64) + 0.2 * rng.random((28, 28))
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = rng.normal(0.1, 0.05, layer.params["b"].shape)
    saliency = explain.saliency_map(model, image, class_index=4)
    assert saliency.shape == (28, 28)
    step = 1e-6
    for row, column in [(14, 14), (10, 17), (20, 8), (5, 5)]:
        shifted_up, shifted_down = image.copy(), image.copy()
        shifted_up[row, column] += step
        shifted_down[row, column] -= step
        numerical = (_logit(model, shifted_up, 4) - _logit(model, shifted_down, 4)) / (2 * step)
        assert saliency[row, column] == pytest.approx(numerical, rel=1e-5, abs=1e-9)


def test_saliency_refuses_a_class_the_model_does_not_have(digits):
    with pytest.raises(ValueError, match="class_index must be in 0..9"):
        explain.saliency_map(nn.build_mlp((8,)), digits[0][0], class_index=10)


def test_default_backward_still_stops_at_the_first_layer(digits):
    model = nn.build_mlp((8,))
    Z = model.forward(nn.flatten(nn.normalize(digits[0][:4])))
    assert model.backward(np.ones_like(Z)) is None
    assert model.backward(np.ones_like(Z), needs_input_grad=True).shape == (4, 784)


def test_class_means_are_the_mean_image_of_each_class(digits):
    X, y = digits
    means = explain.class_means(X, y, n_classes=10)
    one_hot = nn.one_hot(y, 10).astype(np.float64)  # (N, 10)
    expected = (one_hot.T @ X.reshape(len(X), -1) / 255) / one_hot.sum(axis=0)[:, None]
    np.testing.assert_allclose(means.reshape(10, -1), expected, rtol=1e-5)
    assert not explain.class_means(X[y == 3], y[y == 3], 10)[0].any()  # absent class: zeros


def test_nearest_images_agree_with_sorting_all_distances(digits):
    X, _ = digits
    query = X[17]
    nearest = explain.nearest_images(X, query, n=5)
    distances = np.linalg.norm((X.astype(np.float64) - query).reshape(len(X), -1), axis=1)
    assert nearest[0] == 17  # itself first
    np.testing.assert_allclose(np.sort(distances)[:5], distances[nearest])


def test_explain_digit_matches_predict_and_plots(digits):
    X, y = digits
    model = nn.build_mlp((16,))
    nn.fit(model, X, y, n_epochs=2, progress=False)
    explanation = explain.explain_digit(model, X[0], X, y, true_label=int(y[0]), n_nearest=4)
    assert explanation["predicted"] == model.predict(X[:1])[0]
    assert explanation["nearest_images"].shape == (4, 28, 28)
    figure = plots.plot_explanation(explanation, model.class_names())
    titles = [axis.get_title() for axis in figure.axes]
    assert any(title.startswith("input: read as") for title in titles)
    assert sum(title.startswith("nearest:") for title in titles) == 4
