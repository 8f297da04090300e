"""Conv2D, MaxPool2D, Flatten and build_cnn: agreement with naive loop versions, gradient checks,
memory layouts, save/load, bad input, and learning synthetic digits."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from mnist_nn.activations import ReLU
from mnist_nn.builders import build_cnn
from mnist_nn.conv import (
    Conv2D,
    Flatten,
    MaxPool2D,
    col2im,
    col2im_products,
    conv2d_forward_loops,
    im2col,
)
from mnist_nn.gradcheck import check_layer, check_model
from mnist_nn.layers import LAYER_TYPES, Dense
from mnist_nn.model import Model
from mnist_nn.model_file import load_model
from mnist_nn.synthetic import load_synthetic
from mnist_nn.train import fit

rng = np.random.default_rng(0)


# Naive references, written straight from the equations (the forward one is
# mnist_nn.conv.conv2d_forward_loops, which the walkthrough shows too).


def naive_conv_backward(X, W, dout, stride, padding):
    N, C, H, Wd = X.shape
    F, _, K, _ = W.shape
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    dX_pad, dW, db = np.zeros_like(X_pad), np.zeros_like(W), np.zeros(F)
    for n in range(N):
        for f in range(F):
            for i in range(dout.shape[2]):
                for j in range(dout.shape[3]):
                    g = dout[n, f, i, j]
                    db[f] += g
                    for c in range(C):
                        for p in range(K):
                            for q in range(K):
                                y, x = i * stride + p, j * stride + q
                                dW[f, c, p, q] += g * X_pad[n, c, y, x]
                                dX_pad[n, c, y, x] += g * W[f, c, p, q]
    return dX_pad[:, :, padding : padding + H, padding : padding + Wd], dW, db


def naive_maxpool(X, dout, S):
    N, C, H, W = X.shape
    out = np.zeros((N, C, H // S, W // S))
    dX = np.zeros_like(X)
    for n in range(N):
        for c in range(C):
            for i in range(H // S):
                for j in range(W // S):
                    window = X[n, c, i * S : i * S + S, j * S : j * S + S]
                    p, q = np.unravel_index(np.argmax(window), window.shape)  # first maximum
                    out[n, c, i, j] = window[p, q]
                    dX[n, c, i * S + p, j * S + q] = dout[n, c, i, j]
    return out, dX


CONV_CASES = [(1, 0), (1, 1), (2, 0), (2, 1)]  # (stride, padding)


@pytest.mark.parametrize("stride, padding", CONV_CASES)
def test_conv_matches_naive_loops_forward_and_backward(stride, padding):
    layer = Conv2D(3, 4, 3, stride=stride, padding=padding, seed=1, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(4)
    X = rng.standard_normal((2, 3, 7, 6))
    Z = layer.forward(X, training=True)
    W, b = layer.params["W"], layer.params["b"]
    np.testing.assert_allclose(Z, conv2d_forward_loops(X, W, b, stride, padding), rtol=0, atol=1e-6)
    dout = rng.standard_normal(Z.shape)
    dX = layer.backward(dout)
    dX_ref, dW_ref, db_ref = naive_conv_backward(X, W, dout, stride, padding)
    np.testing.assert_allclose(dX, dX_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(layer.grads["b"], db_ref, rtol=0, atol=1e-6)


def test_single_channel_conv_matches_naive_loops():
    # One input channel takes im2col's column-by-column layout; check it on its own.
    layer = Conv2D(1, 2, 5, padding=2, seed=2, dtype=np.float64)
    X = rng.standard_normal((3, 1, 9, 9))
    Z = layer.forward(X, training=True)
    ref = conv2d_forward_loops(X, layer.params["W"], layer.params["b"], 1, 2)
    np.testing.assert_allclose(Z, ref, rtol=0, atol=1e-6)
    dout = rng.standard_normal(Z.shape)
    dX = layer.backward(dout)
    dX_ref, dW_ref, _ = naive_conv_backward(X, layer.params["W"], dout, 1, 2)
    np.testing.assert_allclose(dX, dX_ref, rtol=0, atol=1e-6)
    np.testing.assert_allclose(layer.grads["W"], dW_ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("stride", [1, 2])
def test_col2im_is_the_adjoint_of_im2col(stride):
    # <im2col(X), G> = <X, col2im(G)> for all X, G: the defining property of the backward pass.
    X = rng.standard_normal((2, 7, 8, 3))
    cols = im2col(X, 3, stride)
    G = rng.standard_normal(cols.shape)
    G_offsets = G.reshape(len(G), 9, 3).transpose(1, 0, 2)  # (K*K, N*OH*OW, C)
    assert np.isclose(np.vdot(cols, G), np.vdot(X, col2im(G_offsets, X.shape, 3, stride)))


@pytest.mark.parametrize("stride", [1, 2])
def test_col2im_products_equals_col2im_of_all_products(stride):
    # The backward pass adds each kernel offset's product at once; col2im adds them all after.
    input_shape, K, F, C = (2, 7, 8, 3), 3, 4, 3
    OH, OW = (7 - K) // stride + 1, (8 - K) // stride + 1
    dZ = rng.standard_normal((2 * OH * OW, F))
    W_offsets = rng.standard_normal((K * K, F, C))
    expected = col2im(np.matmul(dZ, W_offsets), input_shape, K, stride)
    np.testing.assert_allclose(
        col2im_products(dZ, W_offsets, input_shape, K, stride), expected, rtol=0, atol=1e-12
    )
    block = np.full(len(dZ) * C, np.nan)  # a reused buffer's old contents never leak in
    np.testing.assert_allclose(
        col2im_products(dZ, W_offsets, input_shape, K, stride, block), expected, atol=1e-12
    )


def test_seeded_cnn_training_is_bit_identical():
    (X, y), _ = load_synthetic(n_train=96, n_test=1, seed=5)
    runs = []
    for _ in range(2):
        model = build_cnn(n_filters=(4, 8), seed=3)
        history = fit(model, X, y, n_epochs=2, batch_size=32, optimizer="adam", seed=4,
                      n_threads=1, progress=False)  # fmt: skip
        runs.append(([param.copy() for param, _ in model.parameters()], history["train_loss"]))
    (first, first_losses), (second, second_losses) = runs
    assert first_losses == second_losses
    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


@pytest.mark.parametrize("stride, padding", CONV_CASES)
def test_conv_passes_gradient_check(stride, padding):
    layer = Conv2D(2, 3, 3, stride=stride, padding=padding, seed=3, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(3)
    errors = check_layer(layer, rng.standard_normal((2, 2, 6, 5)))
    assert set(errors) == {"X", "W", "b"}
    assert max(errors.values()) < 1e-6, errors


@pytest.mark.parametrize(
    "pool_size, shape", [(2, (2, 3, 6, 4)), (2, (2, 2, 5, 7)), (3, (1, 2, 6, 6))]
)
def test_maxpool_matches_naive_loops_and_passes_gradient_check(pool_size, shape):
    layer = MaxPool2D(pool_size)
    X = rng.standard_normal(shape)
    out = layer.forward(X)
    dout = rng.standard_normal(out.shape)
    out_ref, dX_ref = naive_maxpool(X, dout, pool_size)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(layer.backward(dout), dX_ref)
    assert check_layer(layer, X)["X"] < 1e-6


def test_maxpool_sends_a_tied_maximum_gradient_to_one_position():
    X = np.zeros((1, 1, 2, 4))
    X[0, 0, :, 2:] = 1.0  # second window: all four values tie at 1
    layer = MaxPool2D(2)
    np.testing.assert_array_equal(layer.forward(X), [[[[0.0, 1.0]]]])
    dX = layer.backward(np.array([[[[5.0, 7.0]]]]))
    np.testing.assert_array_equal(dX, [[[[5.0, 0.0, 7.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])


def test_flatten_passes_gradient_check_and_keeps_channel_height_width_order():
    layer = Flatten()
    X = rng.standard_normal((2, 3, 4, 5))
    np.testing.assert_array_equal(layer.forward(X), X.reshape(2, 60))
    channels_last = np.ascontiguousarray(X.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(layer.forward(channels_last), X.reshape(2, 60))
    assert check_layer(layer, X)["X"] < 1e-6
    assert layer.output_shape((3, 4, 5)) == (60,)


def test_layers_give_the_same_result_for_any_memory_layout():
    X = rng.standard_normal((2, 3, 8, 8))
    channels_last = np.ascontiguousarray(X.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    for layer in (Conv2D(3, 4, 3, padding=1, dtype=np.float64), MaxPool2D(2)):
        out = layer.forward(X, training=True)
        dout = rng.standard_normal(out.shape)
        dX = layer.backward(dout)
        np.testing.assert_allclose(layer.forward(channels_last, training=True), out, atol=1e-12)
        np.testing.assert_allclose(layer.backward(np.ascontiguousarray(dout)), dX, atol=1e-12)


def small_cnn(dtype=np.float64) -> Model:
    """Both strides, padding and pooling, on 10x10 images with 2 channels."""
    layers = [
        Conv2D(2, 3, 3, padding=1, seed=4, dtype=dtype),
        ReLU(),
        MaxPool2D(2),
        Conv2D(3, 4, 3, stride=2, padding=1, seed=5, dtype=dtype),
        ReLU(),
        Flatten(),
        Dense(36, 3, init="glorot", seed=6, dtype=dtype),
    ]
    return Model(layers, input_shape=(2, 10, 10))


def test_small_cnn_passes_gradient_check_end_to_end():
    model = small_cnn()
    for layer in model.layers:  # nonzero biases so their gradients are checked too
        if "b" in layer.params:
            layer.params["b"][:] = rng.standard_normal(layer.params["b"].shape) * 0.1
    errors = check_model(model, rng.standard_normal((4, 2, 10, 10)), rng.integers(0, 3, 4))
    assert len(errors) == 6
    assert max(errors.values()) < 1e-6, errors


def test_build_cnn_passes_gradient_check():
    model = build_cnn(input_shape=(1, 8, 8), n_filters=(2, 3), kernel_size=3, padding=1,
                      n_classes=4, seed=1, dtype=np.float64)  # fmt: skip
    errors = check_model(model, rng.standard_normal((3, 1, 8, 8)), np.array([0, 1, 3]))
    assert max(errors.values()) < 1e-6, errors


def test_conv_skips_input_gradient_when_not_needed_and_keeps_grad_arrays():
    model = build_cnn()
    first = model.layers[0]
    assert isinstance(first, Conv2D)
    grad_W = first.grads["W"]
    model.forward(rng.random((4, 1, 28, 28), dtype=np.float32), training=True)
    dout = np.ones((4, 16, 28, 28), np.float32)
    assert first.backward(dout, needs_input_grad=False) is None
    assert first.grads["W"] is grad_W and np.abs(grad_W).sum() > 0
    assert first.backward(dout).shape == (4, 1, 28, 28)  # the model did not switch dX off


def test_conv_initialisation_dtype_and_seed():
    layer = Conv2D(16, 64, 5, seed=0)
    assert layer.params["W"].shape == (64, 16, 5, 5) and layer.params["W"].dtype == np.float32
    assert abs(layer.params["W"].std() - np.sqrt(2 / (16 * 25))) < 0.003
    assert not layer.params["b"].any()
    assert layer.forward(rng.random((2, 16, 6, 6), dtype=np.float32)).dtype == np.float32
    assert np.array_equal(Conv2D(1, 4, 3, seed=7).params["W"], Conv2D(1, 4, 3, seed=7).params["W"])
    assert not np.array_equal(
        Conv2D(1, 4, 3, seed=7).params["W"], Conv2D(1, 4, 3, seed=8).params["W"]
    )
    assert Conv2D(1, 4, 3, dtype="float64").params["W"].dtype == np.float64


def test_backward_after_a_large_inference_pass_matches_a_training_pass():
    # Any forward pass keeps what backward needs, whatever its mode and batch size.
    X = rng.standard_normal((200, 2, 6, 6))
    layer = Conv2D(2, 3, 3, padding=1, seed=1, dtype=np.float64)
    fresh = Conv2D(2, 3, 3, padding=1, seed=1, dtype=np.float64)
    Z = layer.forward(X)
    np.testing.assert_array_equal(Z, fresh.forward(X, training=True))
    dout = rng.standard_normal(Z.shape)
    np.testing.assert_array_equal(layer.backward(dout), fresh.backward(dout))
    for name in ("W", "b"):
        np.testing.assert_array_equal(layer.grads[name], fresh.grads[name])
    with pytest.raises(RuntimeError, match="needs a forward pass first"):
        Conv2D(2, 3, 3).backward(np.ones((1, 3, 4, 4)))


def test_build_cnn_structure_and_input_formats():
    model = build_cnn(seed=0)
    assert [type(layer).__name__ for layer in model.layers] == [
        "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense",
    ]  # fmt: skip
    assert model.input_shape == (1, 28, 28)
    assert model.shapes[-2] == (32 * 7 * 7,)
    assert model.n_params == (16 * 25 + 16) + (32 * 16 * 25 + 32) + (32 * 49 * 10 + 10)
    assert "Conv2D(1, 16, 5, 1, 2)" in model.summary()
    images = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    labels = model.predict(images)
    np.testing.assert_array_equal(model.predict(images.reshape(5, 784)), labels)
    np.testing.assert_array_equal(model.predict(images.reshape(5, 1, 28, 28)), labels)
    np.testing.assert_array_equal(model.predict(images / np.float32(255)), labels)
    same = build_cnn(seed=0)
    assert all(
        np.array_equal(a, b) for a, b in zip(model.get_weights(), same.get_weights(), strict=True)
    )


def test_save_and_load_round_trip_exactly(tmp_path):
    (X, y), _ = load_synthetic(n_train=200, n_test=10, seed=1)
    model = build_cnn(n_filters=(4, 8), seed=2)
    fit(model, X, y, n_epochs=1, batch_size=50, seed=0, progress=False)
    path = model.save(tmp_path / "cnn.npz")
    loaded = load_model(path)
    assert loaded.architecture() == model.architecture()
    assert loaded.summary() == model.summary()
    assert loaded.settings == model.settings and loaded.settings.n_filters == (4, 8)
    for a, b in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict_proba(X[:20]), model.predict_proba(X[:20]))
    assert {"Conv2D", "MaxPool2D", "Flatten"} <= set(LAYER_TYPES)


def test_bad_shapes_and_arguments_give_clear_errors():
    model = build_cnn()
    with pytest.raises(ValueError, match=r"shape \(N, 1, 28, 28\)"):
        model.predict(np.zeros((3, 27, 27), np.uint8))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, H, W\)"):
        model.layers[0].forward(np.zeros((3, 784), np.float32))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, 1, H, W\)"):
        model.layers[0].forward(np.zeros((3, 3, 28, 28), np.float32))
    with pytest.raises(ValueError, match=r"expects images of shape \(N, C, H, W\)"):
        MaxPool2D().forward(np.zeros((3, 28, 28)))
    with pytest.raises(ValueError, match="expects inputs of shape"):
        Model([Conv2D(3, 4, 3), Flatten(), Dense(4 * 26 * 26, 10)], input_shape=(1, 28, 28))
    with pytest.raises(ValueError, match="leaves no output"):
        Conv2D(1, 4, 7).output_shape((1, 5, 5))
    with pytest.raises(ValueError, match="at least 2x2"):
        MaxPool2D(2).output_shape((1, 1, 6))
    with pytest.raises(ValueError, match="at least 1"):
        Conv2D(1, 4, 0)
    with pytest.raises(ValueError, match="padding"):
        Conv2D(1, 4, 3, padding=-1)
    with pytest.raises(ValueError, match="float32 or float64"):
        Conv2D(1, 4, 3, dtype=np.int32)
    with pytest.raises(ValueError, match="channels, height, width"):
        build_cnn(input_shape=(784,))
    with pytest.raises(ValueError, match="at least 2x2"):
        build_cnn(input_shape=(1, 6, 6), n_filters=(4, 4, 4), kernel_size=3, padding=1)


def test_small_cnn_learns_synthetic_digits():
    (X, y), (X_test, y_test) = load_synthetic(n_train=1000, n_test=300, seed=3)
    model = build_cnn(n_filters=(4, 8), seed=0)
    history = fit(
        model, X, y, n_epochs=2, batch_size=32, learning_rate=1e-2, seed=0, progress=False
    )
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert model.evaluate(X_test, y_test).accuracy > 0.9


def test_inference_memory_is_sized_per_chunk_not_per_data_set():
    # 2,000 images through build_cnn: its first layer alone would hold 2,000 x 16 x 28 x 28
    # float32 values (100 MB) if predict passed them all at once. Chunks of 128 need a few MB.
    model = build_cnn(seed=0)
    images = np.random.default_rng(0).integers(0, 256, (2_000, 28, 28), dtype=np.uint8)
    model.predict(images[:128])  # the layers' reused buffers exist before measuring
    tracemalloc.start()
    try:
        model.evaluate(images, np.zeros(2_000, dtype=np.int64))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 30 * 2**20, f"evaluate allocated up to {peak / 2**20:.0f} MB at once"


@pytest.mark.parametrize("pool_size, shape", [(4, (2, 3, 9, 8)), (5, (1, 2, 10, 11))])
def test_large_pooling_windows_match_naive_loops_and_pass_gradient_check(pool_size, shape):
    layer = MaxPool2D(pool_size)  # past SMALL_WINDOW: the whole-array path
    assert pool_size**2 > MaxPool2D.SMALL_WINDOW
    X = rng.standard_normal(shape)
    X[0, 0, :pool_size, :pool_size] = 0.5  # a tie: the gradient goes to the first position only
    out = layer.forward(X)
    dout = rng.standard_normal(out.shape)
    out_ref, dX_ref = naive_maxpool(X, dout, pool_size)
    np.testing.assert_array_equal(out, out_ref)
    np.testing.assert_array_equal(layer.backward(dout), dX_ref)
    assert check_layer(layer, rng.standard_normal(shape))["X"] < 1e-6  # no ties: differentiable


def test_both_pooling_paths_agree_on_ties_and_nan():
    from mnist_nn.conv import _first_maxima, _first_maxima_pairwise

    X = np.maximum(rng.standard_normal((2, 6, 6, 3)), 0.0)  # after ReLU: many tied zeros
    X[0, 0, 0, 0] = np.nan
    for S in (2, 3):
        windows = X.reshape(2, 6 // S, S, 6 // S, S, 3)
        out_pairwise, mask_pairwise = _first_maxima_pairwise(windows)
        out, mask = _first_maxima(windows)
        np.testing.assert_array_equal(out, out_pairwise)
        np.testing.assert_array_equal(mask, mask_pairwise)


def lines_run_in_conv(function) -> int:
    """How many lines of conv.py run in function(): its Python-level steps."""
    import sys

    import mnist_nn.conv

    count = 0

    def trace(frame, event, arg):
        nonlocal count
        if frame.f_code.co_filename == mnist_nn.conv.__file__:
            count += event == "line"
            return trace
        return None

    sys.settrace(trace)
    try:
        function()
    finally:
        sys.settrace(None)
    return count


def test_pooling_runs_as_many_python_steps_for_a_huge_window_as_for_a_small_one():
    # A crafted model file once pooled over a whole 816x816 padded image, one Python step per
    # window offset: seconds per picture.
    steps = {}
    for S in (4, 60):
        X = rng.standard_normal((1, 1, S, S))
        layer = MaxPool2D(S)
        steps[S] = lines_run_in_conv(lambda: layer.backward(layer.forward(X)))  # noqa: B023
    assert steps[60] == steps[4]
