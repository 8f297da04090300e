"""Data augmentation: random affine maps (shift, rotation, scale, shear) and elastic distortions
of a batch of images, all images at once, drawn from a seeded generator. Settings name a preset
(augment="affine" or "elastic"); fit applies it to each training batch, fresh every epoch."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A second stream from the run's seed: turning augmentation on leaves shuffling and dropout as
# they were, and the same seed gives the same distortions.
AUGMENT_STREAM = 16


@dataclass(frozen=True)
class Augmentation:
    """How far each random change may go; every one is drawn uniformly in [-limit, limit].

    shift: pixels along each axis; rotation and shear: degrees; scale: relative size change
    (0.1 draws a size factor in [0.9, 1.1]); elastic_alpha: strength of the elastic field in
    pixels, elastic_sigma: its smoothness (Simard, Steinkraus and Platt 2003 use 34 and 4).
    """

    shift: float = 0.0
    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0

    @property
    def is_identity(self) -> bool:
        limits = (self.shift, self.rotation, self.scale, self.shear, self.elastic_alpha)
        return not any(limits)


_AFFINE = Augmentation(shift=2.5, rotation=12.0, scale=0.12, shear=12.0)
# The presets Settings.augment names. "elastic" is Simard's recipe: a milder affine map and the
# elastic field together.
AUGMENTATIONS = {
    "none": Augmentation(),
    "affine": _AFFINE,
    "elastic": Augmentation(
        shift=2.0, rotation=10.0, scale=0.1, shear=10.0, elastic_alpha=34.0, elastic_sigma=4.0
    ),
}


def make_augmenter(name: str, seed: int) -> Callable[[np.ndarray], np.ndarray]:
    """The function fit applies to each training batch: X -> augmented X for preset `name`
    (X itself for "none"), drawing from its own generator seeded by (seed, AUGMENT_STREAM)."""
    augmentation = AUGMENTATIONS[name]
    if augmentation.is_identity:
        return lambda X: X
    rng = np.random.default_rng((seed, AUGMENT_STREAM))
    return lambda X: augment(X, augmentation, rng)


def augment(
    X: np.ndarray, augmentation: Augmentation | str, rng: np.random.Generator
) -> np.ndarray:
    """Randomly distorted copies of images X, shaped (N, H, W), (N, 1, H, W) or (N, H*W).

    uint8 images come back as float32 in [0, 1]; float images keep their dtype and are expected
    in [0, 1]. The result has X's shape; pixels mapped from outside the image are 0 (background).
    """
    if isinstance(augmentation, str):
        augmentation = AUGMENTATIONS[augmentation]
    images = _as_float_images(X)  # (N, H, W)
    N, H, W = images.shape
    matrix, shift = random_affine(N, augmentation, rng)
    displacement = None
    if augmentation.elastic_alpha:
        displacement = elastic_field(
            (N, H, W), augmentation.elastic_alpha, augmentation.elastic_sigma, rng
        )
    return transform(images, matrix, shift, displacement).reshape(X.shape)


def _as_float_images(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X)
    if X.dtype == np.uint8:
        X = X.astype(np.float32) / np.float32(255.0)
    elif not np.issubdtype(X.dtype, np.floating):
        X = X.astype(np.float64)
    size = math.prod(X.shape[1:])
    if X.ndim in (3, 4) and size == X.shape[-1] * X.shape[-2]:
        return X.reshape(len(X), X.shape[-2], X.shape[-1])
    side = math.isqrt(size)
    if side * side != size:
        raise ValueError(f"augment needs square images, got samples shaped {X.shape[1:]}")
    return X.reshape(len(X), side, side)


def random_affine(
    n_images: int, augmentation: Augmentation, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """n_images random affine maps: matrices (N, 2, 2) acting on (row, column) offsets from the
    image centre, and shifts (N, 2) in pixels (row, column). A = rotation @ shear @ scale."""
    angle = np.radians(rng.uniform(-1, 1, n_images) * augmentation.rotation)
    shear = np.tan(np.radians(rng.uniform(-1, 1, n_images) * augmentation.shear))
    size = 1.0 + rng.uniform(-1, 1, n_images) * augmentation.scale
    shift = rng.uniform(-1, 1, (n_images, 2)) * augmentation.shift
    cos, sin = np.cos(angle), np.sin(angle)
    # Rows point down, so this turns a digit anticlockwise on screen for a positive angle.
    rotation = np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)
    shearing = np.zeros((n_images, 2, 2))
    shearing[:, 0, 0] = shearing[:, 1, 1] = 1.0
    shearing[:, 1, 0] = shear  # columns slide in proportion to the row: a slant
    return rotation @ shearing * size[:, None, None], shift


def elastic_field(
    shape: tuple[int, int, int], alpha: float, sigma: float, rng: np.random.Generator
) -> np.ndarray:
    """Random displacements (N, 2, H, W) in pixels (Simard et al. 2003): uniform noise in
    [-1, 1] smoothed by a Gaussian of width sigma (with zeros beyond the edge), times alpha."""
    N, H, W = shape
    field = rng.random((N * 2, H, W), dtype=np.float32) * 2 - 1
    # Two large matrix products rather than 2N small ones: blur along columns, then rows.
    G_W, G_H = _gaussian_matrix(W, sigma), _gaussian_matrix(H, sigma)
    along_columns = field.reshape(-1, W) @ G_W.T  # (2N*H, W)
    by_row = along_columns.reshape(N * 2, H, W).transpose(1, 0, 2).reshape(H, -1)  # (H, 2N*W)
    smooth = (G_H @ by_row).reshape(H, N * 2, W).transpose(1, 0, 2)  # (2N, H, W)
    return alpha * smooth.reshape(N, 2, H, W)


def _gaussian_matrix(size: int, sigma: float) -> np.ndarray:
    """G (size, size) with G @ v the Gaussian blur of v (weights summing to 1 over the whole
    kernel, so the edge sees zeros): a separable 2-D blur is G_H @ F @ G_W^T."""
    radius = int(4 * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1)
    norm = np.exp(-(offsets**2) / (2 * sigma**2)).sum()
    distance = np.arange(size)[:, None] - np.arange(size)[None, :]
    G = np.exp(-(distance**2) / (2 * sigma**2)) / norm
    return np.where(np.abs(distance) <= radius, G, 0.0).astype(np.float32)


def transform(
    images: np.ndarray,
    matrix: np.ndarray,
    shift: np.ndarray,
    displacement: np.ndarray | None = None,
) -> np.ndarray:
    """Warp images (N, H, W) by the affine maps p -> A (p - c) + c + shift about the centre c,
    then by the displacement field (N, 2, H, W): output(p) = input(source(p)), sampled bilinearly.

    The content moves by +shift: a digit shifted by (2, 0) sits two rows lower.
    """
    N, H, W = images.shape
    centre = np.array([(H - 1) / 2, (W - 1) / 2])
    rows, cols = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
    offsets = np.stack([rows, cols]).reshape(2, -1) - centre[:, None]  # (2, H*W)
    inverse = np.linalg.inv(matrix)  # (N, 2, 2): each output pixel asks where it came from
    source = inverse @ (offsets[None] - shift[:, :, None]) + centre[None, :, None]  # (N, 2, H*W)
    source = source.astype(np.float32)  # positions within a pixel's 1/1000 are plenty
    if displacement is not None:
        source = source + displacement.reshape(N, 2, -1)
    return bilinear_sample(images, source[:, 0], source[:, 1]).reshape(N, H, W)


def bilinear_sample(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Values of images (N, H, W) at fractional positions rows, cols (N, P), 0 outside, in
    images' dtype and clipped to [0, 1]. One gather per corner over the whole batch."""
    N, H, W = images.shape
    # One zero pixel before and two after each edge: a clipped position and its right/lower
    # neighbour both land on zeros.
    padded = np.zeros((N, H + 3, W + 3), dtype=images.dtype)
    padded[:, 1 : H + 1, 1 : W + 1] = images
    flat = padded.reshape(-1)
    rows = np.clip(rows, -1.0, H)
    cols = np.clip(cols, -1.0, W)
    row0, col0 = np.floor(rows), np.floor(cols)
    row_weight = (rows - row0).astype(images.dtype, copy=False)  # (N, P)
    col_weight = (cols - col0).astype(images.dtype, copy=False)
    # Flat index of each upper-left corner, computed in floats and cast once (float32 holds
    # whole numbers exactly below 2**24).
    exact = rows.dtype if flat.size < 2**24 else np.float64
    first_row = np.arange(N, dtype=exact)[:, None] * (H + 3) + 1
    corner = ((first_row + row0) * (W + 3) + col0 + 1).astype(np.intp)  # (N, P)
    top = _between(np.take(flat, corner), np.take(flat, corner + 1), col_weight)
    corner += W + 3  # the row below
    bottom = _between(np.take(flat, corner), np.take(flat, corner + 1), col_weight)
    return np.clip(_between(top, bottom, row_weight), 0.0, 1.0)


def _between(start: np.ndarray, end: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Linear interpolation start + weight (end - start): exactly start where weight is 0."""
    return start + weight * (end - start)
