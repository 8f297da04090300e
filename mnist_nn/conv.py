"""Convolution and pooling for images (N, C, H, W): Conv2D as im2col + one matrix product,
MaxPool2D and Flatten, with the same Layer interface as Dense.

Shapes are (N, C, H, W) everywhere, as in the equations. In memory, Conv2D and MaxPool2D keep
the channels last (N, H, W, C) and return a transposed view with the (N, C, H, W) shape: then
each im2col row is copied in contiguous runs of K*C values, the convolution is a single
(N*OH*OW, K*K*C) x (K*K*C, F) product whose result already is the output, and no large array is
ever transposed. Any memory layout gives the same numbers; NumPy follows the strides.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided

from mnist_nn.layers import Layer, check_layer_size, register_layer


def conv_output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """Output height (or width) of a convolution: floor((size + 2 padding - K) / stride) + 1."""
    return (size + 2 * padding - kernel_size) // stride + 1


def im2col(
    X: np.ndarray, kernel_size: int, stride: int = 1, out: np.ndarray | None = None
) -> np.ndarray:
    """Every K x K window of X as one row.

    X (N, H, W, C), channels last and already padded -> cols (N*OH*OW, K*K*C), where
    OH = (H - K) // stride + 1 (OW likewise) and the columns run over kernel row p, kernel
    column q, channel c, in that order:
        cols[(n, i, j), (p, q, c)] = X[n, i*stride + p, j*stride + q, c]
    The windows are a strided view of X (no copy); copying them into cols is the one copy.

    The memory layout is chosen for a fast copy; the matrix product reads either. With several
    channels each row is stored whole, built from contiguous runs of K*C values. With a single
    channel those runs would be only K long, so cols is stored column by column instead (a
    transposed view of a (K*K, N*OH*OW) array): one kernel offset's values, row after row of
    the image, are then contiguous runs of OW.

    out: optionally a contiguous array with exactly N*OH*OW*K*K*C entries to write into, so a
    layer can reuse one buffer from batch to batch instead of allocating (and page-faulting in)
    tens of megabytes each time.
    """
    N, H, W, C = X.shape
    K = kernel_size
    OH, OW = (H - K) // stride + 1, (W - K) // stride + 1
    sN, sH, sW, sC = X.strides
    windows = as_strided(
        X,
        shape=(N, OH, OW, K, K, C),
        strides=(sN, stride * sH, stride * sW, sH, sW, sC),
        writeable=False,
    )
    if out is None:
        out = np.empty(windows.size, dtype=X.dtype)
    if C > 1:
        np.copyto(out.reshape(windows.shape), windows)
        return out.reshape(N * OH * OW, K * K * C)
    np.copyto(out.reshape(K, K, C, N, OH, OW), windows.transpose(3, 4, 5, 0, 1, 2))
    return out.reshape(K * K * C, N * OH * OW).T


def col2im(
    dcols: np.ndarray, input_shape: tuple[int, int, int, int], kernel_size: int, stride: int = 1
) -> np.ndarray:
    """The adjoint of im2col: add each window's gradient back onto the pixels it came from.

    dcols (K*K, N*OH*OW, C), kernel offset first: dcols[p*K + q, (n, i, j), c] is the gradient
    for X[n, i*stride + p, j*stride + q, c]; returns dX (N, H, W, C), the padded input's shape.
    Windows overlap, so a pixel collects from up to K*K of them. The loop runs over the K*K
    kernel offsets only, each adding a whole (N, OH, OW, C) block; with the offset first that
    block is contiguous, and for stride 1 so is each (OW, C) run it lands on.
    """
    N, H, W, C = input_shape
    K = kernel_size
    OH, OW = (H - K) // stride + 1, (W - K) // stride + 1
    dX = np.zeros(input_shape, dtype=dcols.dtype)
    for p in range(K):
        for q in range(K):
            block = dcols[p * K + q].reshape(N, OH, OW, C)
            dX[:, p : p + stride * OH : stride, q : q + stride * OW : stride, :] += block
    return dX


def col2im_products(
    dZ: np.ndarray,
    W_offsets: np.ndarray,
    input_shape: tuple[int, int, int, int],
    kernel_size: int,
    stride: int = 1,
    block: np.ndarray | None = None,
) -> np.ndarray:
    """col2im(dcols) with dcols[p*K + q] = dZ W_offsets[p*K + q], one kernel offset at a time.

    dZ (N*OH*OW, F), W_offsets (K*K, F, C) -> dX (N, H, W, C), the padded input's shape: the
    same sums as col2im of all K*K products, but each offset's (N*OH*OW, C) product is added
    onto its pixels right away, so only one of them exists at a time. That block (1.6 MB for
    build_cnn's second layer at batch 128) stays in the CPU's cache between the product and the
    add; all K*K of them (40 MB) would go out to memory and back.

    block: optionally a reused array with exactly N*OH*OW*C entries to hold each product.
    """
    N, H, W, C = input_shape
    K = kernel_size
    OH, OW = (H - K) // stride + 1, (W - K) // stride + 1
    if block is None:
        block = np.empty(len(dZ) * C, dtype=np.result_type(dZ.dtype, W_offsets.dtype))
    block = block.reshape(len(dZ), C)
    dX = np.zeros(input_shape, dtype=block.dtype)
    for p in range(K):
        for q in range(K):
            np.matmul(dZ, W_offsets[p * K + q], out=block)  # (N*OH*OW, F) x (F, C)
            rows = block.reshape(N, OH, OW, C)
            dX[:, p : p + stride * OH : stride, q : q + stride * OW : stride, :] += rows
    return dX


def conv2d_forward_loops(
    X: np.ndarray, W: np.ndarray, b: np.ndarray, stride: int = 1, padding: int = 0
) -> np.ndarray:
    """Conv2D's forward pass as plain loops, straight from the equation: the readable reference
    that the tests and the walkthrough compare the im2col version with (slow: small inputs only).

        Z[n, f, i, j] = b[f] + sum over c, p, q of W[f, c, p, q] X_pad[n, c, i*s + p, j*s + q]

    X (N, C, H, W), W (F, C, K, K), b (F,) -> Z (N, F, OH, OW), OH = (H + 2 padding - K) // s + 1.
    """
    N, C, H, Wd = X.shape
    F, _, K, _ = W.shape
    X_pad = np.pad(X, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    OH = conv_output_size(H, K, stride, padding)
    OW = conv_output_size(Wd, K, stride, padding)
    Z = np.zeros((N, F, OH, OW), dtype=np.result_type(X.dtype, W.dtype))
    for n in range(N):
        for f in range(F):
            for i in range(OH):
                for j in range(OW):
                    window = X_pad[n, :, i * stride : i * stride + K, j * stride : j * stride + K]
                    Z[n, f, i, j] = b[f] + np.sum(W[f] * window)  # (C, K, K) times (C, K, K)
    return Z


def _check_images(layer: Layer, X: np.ndarray, n_channels: int | None = None) -> None:
    if X.ndim != 4 or (n_channels is not None and X.shape[1] != n_channels):
        channels = "C" if n_channels is None else str(n_channels)
        raise ValueError(
            f"{type(layer).__name__} expects images of shape (N, {channels}, H, W), got "
            f"{X.shape}; a batch of 28x28 grey images is X.reshape(N, 1, 28, 28)"
        )


@register_layer
class Conv2D(Layer):
    """2-D convolution (cross-correlation, as in every deep-learning library) with F filters.

        Z[n, f, i, j] = b[f] + sum over c, p, q of W[f, c, p, q] X_pad[n, c, i*s + p, j*s + q]

    X (N, C, H, W) -> Z (N, F, OH, OW), OH = (H + 2 padding - K) // s + 1, OW likewise;
    W (F, C, K, K), b (F,); X_pad is X with `padding` rows and columns of zeros on each side.
    As matrices, with cols = im2col(X_pad) (N*OH*OW, K*K*C) and W_mat (K*K*C, F):
        Z = cols W_mat + b          dW_mat = cols^T dZ          db = sum of dZ over rows
        dX = col2im(dZ W_mat^T)     (skipped when needs_input_grad is False)
    where dZ W_mat^T is computed as K*K products dZ W[:, :, p, q] (N*OH*OW, F) x (F, C), one
    per kernel offset, each added onto its pixels at once (col2im_products).

    He init, W ~ Normal(0, 2 / (C K K)): C K K inputs feed each output (He et al., 2015).
    """

    def __init__(
        self,
        n_channels: int,
        n_filters: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        seed: int | np.random.Generator | None = 0,
        dtype: str | type = np.float32,
    ) -> None:
        super().__init__()
        self.n_channels, self.n_filters = int(n_channels), int(n_filters)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        if min(self.n_channels, self.n_filters, self.kernel_size, self.stride) < 1:
            raise ValueError(
                "Conv2D needs n_channels, n_filters, kernel_size and stride of at least 1, got "
                f"{n_channels}, {n_filters}, {kernel_size}, {stride}"
            )
        if self.padding < 0:
            raise ValueError(f"padding must be 0 or more, got {padding}")
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"Conv2D dtype must be float32 or float64, got {self.dtype}")
        K, C = self.kernel_size, self.n_channels
        shapes = self.parameter_shapes(C, self.n_filters, K)
        check_layer_size(f"Conv2D({C} -> {self.n_filters}, {K}x{K})", shapes)
        rng = np.random.default_rng(seed)
        W = rng.normal(0.0, np.sqrt(2.0 / (C * K * K)), size=shapes["W"])
        self.params = {"W": W.astype(self.dtype), "b": np.zeros(shapes["b"], self.dtype)}
        self.grads = {name: np.zeros_like(param) for name, param in self.params.items()}
        self.cols: np.ndarray | None = None  # cached im2col of the last batch
        self.padded_shape: tuple[int, int, int, int] | None = None
        self.input_hw: tuple[int, int] | None = None
        self._padded: np.ndarray | None = None  # reused zero-bordered input buffer
        self._buffers: dict[str, np.ndarray] = {}  # reused im2col and col2im matrices

    def _buffer(self, name: str, size: int, dtype: np.dtype) -> np.ndarray:
        """A reused 1-D scratch array of `size` entries (grown when a batch needs more)."""
        buffer = self._buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self._buffers[name] = np.empty(size, dtype=dtype)
        return buffer[:size]

    def _pad(self, X_nhwc: np.ndarray) -> np.ndarray:
        """X (N, H, W, C) -> (N, H + 2P, W + 2P, C) with a zero border, in a reused buffer.

        The border stays zero between calls, so only the inside is copied each batch.
        """
        P = self.padding
        if P == 0:
            return X_nhwc
        N, H, W, C = X_nhwc.shape
        shape = (N, H + 2 * P, W + 2 * P, C)
        if (
            self._padded is None
            or self._padded.shape != shape
            or self._padded.dtype != X_nhwc.dtype
        ):
            self._padded = np.zeros(shape, dtype=X_nhwc.dtype)
        self._padded[:, P : P + H, P : P + W, :] = X_nhwc
        return self._padded

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        _check_images(self, X, self.n_channels)
        N, C, H, W = X.shape
        K, F = self.kernel_size, self.n_filters
        OH = conv_output_size(H, K, self.stride, self.padding)
        OW = conv_output_size(W, K, self.stride, self.padding)
        if OH < 1 or OW < 1:
            raise ValueError(self._too_small((C, H, W)))
        # (K*K*C, F): the filters as columns, rows ordered (p, q, c) like im2col's columns.
        W_mat = self.params["W"].transpose(2, 3, 1, 0).reshape(K * K * C, F)
        X_nhwc = X.transpose(0, 2, 3, 1)  # a view; contiguous when X came from a layer here
        # Model.predict and evaluate pass large inputs in chunks, which bounds these buffers.
        X_pad = self._pad(X_nhwc)  # (N, H + 2P, W + 2P, C)
        Z = np.empty((N * OH * OW, F), dtype=np.result_type(X.dtype, self.dtype))
        cols_buffer = self._buffer("cols", len(Z) * K * K * C, X_pad.dtype)
        self.cols = im2col(X_pad, K, self.stride, out=cols_buffer)  # (N*OH*OW, K*K*C)
        np.matmul(self.cols, W_mat, out=Z)
        Z += self.params["b"]
        self.padded_shape, self.input_hw = X_pad.shape, (H, W)
        return Z.reshape(N, OH, OW, F).transpose(0, 3, 1, 2)  # (N, F, OH, OW), channels last

    def backward(self, dout: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        if self.cols is None:
            raise RuntimeError("Conv2D.backward needs a forward pass first")
        K, C, F = self.kernel_size, self.n_channels, self.n_filters
        dZ = dout.transpose(0, 2, 3, 1).reshape(-1, F)  # (N*OH*OW, F), a view if channels-last
        # dW_mat^T = dZ^T cols, (F, K*K*C). The same numbers as cols^T dZ, but BLAS computes
        # this orientation about twice as fast here: the long N*OH*OW axis is summed over
        # with both operands read along their rows.
        dW_rows = dZ.T @ self.cols  # (F, K*K*C), columns ordered (p, q, c)
        self.grads["W"][...] = dW_rows.reshape(F, K, K, C).transpose(0, 3, 1, 2)  # (F, C, K, K)
        # db = 1^T dZ: the column sums as a matrix-vector product, which BLAS computes about
        # ten times faster than np.sum along the long axis of a narrow (N*OH*OW, F) array.
        np.matmul(np.ones(len(dZ), dZ.dtype), dZ, out=self.grads["b"])
        if not needs_input_grad:
            return None
        # (K*K, F, C): the filters' weights at each kernel offset (p, q).
        W_offsets = self.params["W"].transpose(2, 3, 0, 1).reshape(K * K, F, C)
        block = self._buffer("block", len(dZ) * C, np.result_type(dZ.dtype, self.dtype))
        dX_pad = col2im_products(dZ, W_offsets, self.padded_shape, K, self.stride, block)
        P, (H, W) = self.padding, self.input_hw
        return dX_pad[:, P : P + H, P : P + W, :].transpose(0, 3, 1, 2)  # (N, C, H, W)

    def _too_small(self, input_shape: tuple[int, ...]) -> str:
        return (
            f"Conv2D with kernel {self.kernel_size}, stride {self.stride} and padding "
            f"{self.padding} leaves no output for inputs of shape {tuple(input_shape)}; use a "
            "smaller kernel or more padding"
        )

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3 or input_shape[0] != self.n_channels:
            raise ValueError(
                f"Conv2D({self.n_channels} -> {self.n_filters}) expects inputs of shape "
                f"({self.n_channels}, H, W) per sample, got {tuple(input_shape)}"
            )
        _, H, W = input_shape
        OH = conv_output_size(H, self.kernel_size, self.stride, self.padding)
        OW = conv_output_size(W, self.kernel_size, self.stride, self.padding)
        if OH < 1 or OW < 1:
            raise ValueError(self._too_small(input_shape))
        return (self.n_filters, OH, OW)

    def scratch_values(self, input_shape: tuple[int, ...]) -> int:
        """Per sample: the zero-padded input and its im2col rows (OH * OW rows of K*K*C)."""
        C, H, W = input_shape
        P, K = self.padding, self.kernel_size
        _, OH, OW = self.output_shape(input_shape)
        return (H + 2 * P) * (W + 2 * P) * C + OH * OW * K * K * C

    @classmethod
    def parameter_shapes(cls, n_channels: int, n_filters: int, kernel_size: int, **config) -> dict:
        F, C, K = int(n_filters), int(n_channels), int(kernel_size)
        return {"W": (F, C, K, K), "b": (F,)}

    def get_config(self) -> dict:
        return {
            "n_channels": self.n_channels,
            "n_filters": self.n_filters,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dtype": self.dtype.name,
        }


@register_layer
class MaxPool2D(Layer):
    """Max pooling over non-overlapping S x S windows (S = pool_size, stride S).

        out[n, c, i, j] = max over p, q < S of X[n, c, i*S + p, j*S + q]
        dX = dout at the position of each window's maximum (the first one on a tie), else 0

    X (N, C, H, W) -> out (N, C, H // S, W // S); rows and columns past the last whole window
    are dropped (and get zero gradient). The windows are a reshape, (N, OH, S, OW, S, C), so
    there is no im2col and no loop over pixels, and the number of NumPy calls does not grow with
    S: windows of up to SMALL_WINDOW values take pairwise maxima over their offsets (the fastest
    way for the usual 2x2), larger ones whole-array reductions (see _first_maxima).
    """

    SMALL_WINDOW = 9  # S * S up to this (S <= 3): at most 9 pairwise steps

    def __init__(self, pool_size: int = 2) -> None:
        super().__init__()
        self.pool_size = int(pool_size)
        if self.pool_size < 1:
            raise ValueError(f"pool_size must be at least 1, got {pool_size}")
        self.mask: np.ndarray | None = None  # (N, OH, S, OW, S, C): where each maximum was
        self.input_shape: tuple[int, ...] | None = None

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        _check_images(self, X)
        N, C, H, W = X.shape
        S = self.pool_size
        OH, OW = H // S, W // S
        if OH < 1 or OW < 1:
            raise ValueError(f"MaxPool2D({S}) needs images of at least {S}x{S}, got {X.shape}")
        # (N, OH, S, OW, S, C): splitting H and W is a view for any strides.
        windows = X.transpose(0, 2, 3, 1)[:, : OH * S, : OW * S, :].reshape(N, OH, S, OW, S, C)
        if S * S <= self.SMALL_WINDOW:
            out, mask = _first_maxima_pairwise(windows)
        else:
            out, mask = _first_maxima(windows)
        self.mask, self.input_shape = mask, X.shape
        return out.transpose(0, 3, 1, 2)  # (N, C, OH, OW)

    def backward(self, dout: np.ndarray) -> np.ndarray:
        N, C, H, W = self.input_shape
        _, OH, S, OW, _, _ = self.mask.shape
        dout_nhwc = dout.transpose(0, 2, 3, 1)  # (N, OH, OW, C)
        dwindows = self.mask * dout_nhwc[:, :, None, :, None, :]  # (N, OH, S, OW, S, C)
        dX = dwindows.reshape(N, OH * S, OW * S, C)
        if (OH * S, OW * S) != (H, W):  # put back the dropped edge, with zero gradient
            dX = np.pad(dX, ((0, 0), (0, H - OH * S), (0, W - OW * S), (0, 0)))
        return dX.transpose(0, 3, 1, 2)  # (N, C, H, W)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(input_shape) != 3:
            raise ValueError(
                f"MaxPool2D expects inputs of shape (C, H, W) per sample, got {tuple(input_shape)}"
            )
        C, H, W = input_shape
        S = self.pool_size
        if H < S or W < S:
            raise ValueError(f"MaxPool2D({S}) needs images of at least {S}x{S}, got {H}x{W}")
        return (C, H // S, W // S)

    def get_config(self) -> dict:
        return {"pool_size": self.pool_size}


def _first_maxima_pairwise(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each window's maximum (N, OH, OW, C) and a mask (N, OH, S, OW, S, C) of the first
    position holding it, in row order, by pairwise steps over the S*S offsets: much faster than
    a reduction over two strided axes, for small windows."""
    S = windows.shape[2]
    out = windows[:, :, 0, :, 0, :].copy()  # (N, OH, OW, C)
    for offset in range(1, S * S):
        np.maximum(out, windows[:, :, offset // S, :, offset % S, :], out=out)
    # One winner per window, the first in row order, so a tie (common after ReLU: all zeros)
    # never sends the gradient twice.
    mask = windows == out[:, :, None, :, None, :]  # (N, OH, S, OW, S, C)
    taken = mask[:, :, 0, :, 0, :].copy()
    for offset in range(1, S * S):
        winner = mask[:, :, offset // S, :, offset % S, :]
        np.greater(winner, taken, out=winner)  # winner and not taken
        if offset < S * S - 1:
            taken |= winner
    return out, mask


def _first_maxima(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The same as _first_maxima_pairwise in a fixed number of whole-array steps, whatever S:
    the maximum by reductions, then the first position holding it as the lowest rank p*S + q
    among the positions equal to it."""
    S = windows.shape[2]
    out = windows.max(axis=2).max(axis=3)  # rows p first: (N, OH, OW, S, C), then columns q
    rank_type = np.min_scalar_type(S * S)
    rank = np.arange(S * S, dtype=rank_type).reshape(1, 1, S, 1, S, 1)
    ranks = np.where(windows == out[:, :, None, :, None, :], rank, rank_type.type(S * S))
    first = ranks.min(axis=4).min(axis=2)  # (N, OH, OW, C); S*S where none (a NaN window)
    return out, rank == first[:, :, None, :, None, :]


@register_layer
class Flatten(Layer):
    """Each sample's values as one row, in (C, H, W) order: (N, C, H, W) -> (N, C*H*W).

    Backward reshapes dout back to the input's shape. Any (N, ...) input works.
    """

    def __init__(self) -> None:
        super().__init__()
        self.input_shape: tuple[int, ...] | None = None

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.input_shape = X.shape
        return X.reshape(len(X), -1)  # copies into (C, H, W) order if X is channels-last

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout.reshape(self.input_shape)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (int(np.prod(input_shape)),)
