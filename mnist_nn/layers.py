"""The Layer interface every building block follows, and the two layers with their own logic:
Dense (fully connected) and inverted Dropout. LAYER_TYPES lets a saved model rebuild its layers."""

from __future__ import annotations

import numpy as np

LAYER_TYPES: dict[str, type[Layer]] = {}
# The most parameter values one layer may hold (200 MB of float32): far beyond anything that
# learns MNIST, small enough that a typo such as 100000000 units fails at once, not after
# minutes of swapping.
MAX_LAYER_PARAMETERS = 50_000_000


def check_layer_size(layer_name: str, shapes: dict[str, tuple[int, ...]]) -> None:
    """Refuse a layer whose parameters would exceed MAX_LAYER_PARAMETERS, before allocating."""
    n_values = sum(int(np.prod(shape, dtype=object)) for shape in shapes.values())
    if n_values > MAX_LAYER_PARAMETERS:
        raise ValueError(
            f"{layer_name} would hold {n_values:,} parameters ({n_values * 4 / 2**30:,.1f} GiB "
            f"of float32); a layer may hold at most {MAX_LAYER_PARAMETERS:,}: make it smaller"
        )


def register_layer(cls: type[Layer]) -> type[Layer]:
    """Class decorator: list a layer in LAYER_TYPES under its class name, so load_model finds it."""
    LAYER_TYPES[cls.__name__] = cls
    return cls


class Layer:
    """One step of the network: forward(X) -> out, backward(dout) -> dX.

    ``params`` holds the learnable arrays by name ("W", "b"); ``backward`` writes the gradient of
    the loss with respect to each of them into ``grads`` under the same name. The grads arrays are
    overwritten on every backward pass (never accumulated) and stay the same objects, so an
    optimizer can hold on to them. ``forward`` caches what ``backward`` needs; ``backward`` uses
    the cache of the most recent forward call, whatever its batch size or mode.

    A layer with parameters takes ``backward(dout, needs_input_grad=True)``: the Model passes
    False to its first such layer, since nobody needs the gradient with respect to the images and
    for Dense it costs a whole matrix product; backward then returns None. Its parameter shapes
    come from the classmethod ``parameter_shapes(**config)``, so load_model can check a file's
    arrays before building anything.
    """

    def __init__(self) -> None:
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    @classmethod
    def parameter_shapes(cls, **config) -> dict[str, tuple[int, ...]]:
        """The shape of each parameter of cls(**config), without building it (none here)."""
        return {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of one sample's output for one sample's input shape (no batch dimension)."""
        return tuple(input_shape)

    def scratch_values(self, input_shape: tuple[int, ...]) -> int:
        """Values the forward pass holds per sample besides its output (none here)."""
        return 0

    def get_config(self) -> dict:
        """Constructor arguments as JSON-able values: type(self)(**get_config()) rebuilds it."""
        return {}

    @property
    def n_params(self) -> int:
        return sum(param.size for param in self.params.values())

    def __repr__(self) -> str:
        arguments = ", ".join(f"{key}={value!r}" for key, value in self.get_config().items())
        return f"{type(self).__name__}({arguments})"


@register_layer
class Dense(Layer):
    """Fully connected layer: Z = X W + b.

    X (N, D) -> Z (N, M) with W (D, M) and b (M,). Backward, for dout = dL/dZ (N, M):
        dW = X^T dout   (D, M)      db = sum over the batch of dout   (M,)
        dX = dout W^T   (N, D)      (skipped when needs_input_grad is False)

    init="he" draws W ~ Normal(0, 2 / D), right for ReLU-like layers (He et al., 2015);
    init="glorot" draws W ~ Uniform(-a, a) with a = sqrt(6 / (D + M)), right for sigmoid and tanh
    (Glorot and Bengio, 2010). b starts at zero.
    """

    def __init__(
        self,
        n_inputs: int,
        n_outputs: int,
        init: str = "he",
        seed: int | np.random.Generator | None = 0,
        dtype: str | type = np.float32,
    ) -> None:
        super().__init__()
        if int(n_inputs) < 1 or int(n_outputs) < 1:
            raise ValueError(
                f"Dense needs at least one input and one output, got {n_inputs} -> {n_outputs}"
            )
        if init not in ("he", "glorot"):
            raise ValueError(f"unknown init {init!r}; valid choices are 'he' and 'glorot'")
        self.n_inputs, self.n_outputs, self.init = int(n_inputs), int(n_outputs), init
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"Dense dtype must be float32 or float64, got {self.dtype}")
        shapes = self.parameter_shapes(self.n_inputs, self.n_outputs)
        check_layer_size(f"Dense({self.n_inputs} -> {self.n_outputs})", shapes)
        rng = np.random.default_rng(seed)
        if init == "he":
            W = rng.normal(0.0, np.sqrt(2.0 / self.n_inputs), size=shapes["W"])
        else:
            limit = np.sqrt(6.0 / (self.n_inputs + self.n_outputs))
            W = rng.uniform(-limit, limit, size=shapes["W"])
        self.params = {"W": W.astype(self.dtype), "b": np.zeros(shapes["b"], self.dtype)}
        self.grads = {name: np.zeros_like(param) for name, param in self.params.items()}
        self.X: np.ndarray | None = None

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        self.X = X  # (N, D), kept for dW
        Z = X @ self.params["W"]  # (N, M)
        Z += self.params["b"]
        return Z

    def backward(self, dout: np.ndarray, needs_input_grad: bool = True) -> np.ndarray | None:
        # Written into the existing grads arrays (out=) so an optimizer's references stay valid.
        np.matmul(self.X.T, dout, out=self.grads["W"])  # (D, M)
        np.sum(dout, axis=0, out=self.grads["b"])  # (M,)
        if not needs_input_grad:
            return None
        return dout @ self.params["W"].T  # (N, D)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        if tuple(input_shape) != (self.n_inputs,):
            raise ValueError(
                f"Dense({self.n_inputs} -> {self.n_outputs}) expects inputs of shape "
                f"({self.n_inputs},) per sample, got {tuple(input_shape)}"
            )
        return (self.n_outputs,)

    @classmethod
    def parameter_shapes(cls, n_inputs: int, n_outputs: int, **config) -> dict:
        return {"W": (int(n_inputs), int(n_outputs)), "b": (int(n_outputs),)}

    def get_config(self) -> dict:
        return {
            "n_inputs": self.n_inputs,
            "n_outputs": self.n_outputs,
            "init": self.init,
            "dtype": self.dtype.name,
        }


@register_layer
class Dropout(Layer):
    """Inverted dropout: while training, zero each value with probability `rate` and scale the
    survivors by 1 / (1 - rate), so the expected output equals the input and inference needs no
    change (Srivastava et al., 2014). At inference (training=False) it passes X through.

        out = X * M,   dX = dout * M,   M = keep / (1 - rate), keep ~ Bernoulli(1 - rate)

    Shapes: any (N, ...) -> the same. The masks come from ``rng``, seeded by `seed`.
    """

    def __init__(self, rate: float = 0.5, seed: int | None = 0) -> None:
        super().__init__()
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate, self.seed = float(rate), seed
        self.rng = np.random.default_rng(seed)
        self.mask: np.ndarray | None = None

    def forward(self, X: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self.mask = None
            return X
        keep = self.rng.random(X.shape, dtype=np.float32) >= self.rate
        self.mask = keep * X.dtype.type(1.0 / (1.0 - self.rate))  # (N, ...) in X's dtype
        return X * self.mask

    def backward(self, dout: np.ndarray) -> np.ndarray:
        return dout if self.mask is None else dout * self.mask

    def get_config(self) -> dict:
        return {"rate": self.rate, "seed": self.seed}
