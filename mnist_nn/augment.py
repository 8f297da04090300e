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

    What photos and scans do to the pixels, each applied to an image with probability one half:
    stroke: strokes thickened (up to a full grey dilation by a plus sign, at 1) or thinned (half
    an erosion at -1), by an amount drawn in [-stroke, stroke]; blur: a Gaussian blur of width
    drawn in [0, blur] pixels; noise: Gaussian noise of deviation drawn in [0, noise];
    background: a page that is not black, at a grey level drawn in [0, background] (the ink
    stays at 1).
    """

    shift: float = 0.0
    rotation: float = 0.0
    scale: float = 0.0
    shear: float = 0.0
    elastic_alpha: float = 0.0
    elastic_sigma: float = 4.0
    stroke: float = 0.0
    blur: float = 0.0
    noise: float = 0.0
    background: float = 0.0

    @property
    def changes_pixels(self) -> bool:
        return bool(self.stroke or self.blur or self.noise or self.background)

    @property
    def is_identity(self) -> bool:
        limits = (self.shift, self.rotation, self.scale, self.shear, self.elastic_alpha)
        return not any(limits) and not self.changes_pixels


_AFFINE = Augmentation(shift=2.5, rotation=12.0, scale=0.12, shear=12.0)
# The presets Settings.augment names. "elastic" is Simard's recipe: a milder affine map and the
# elastic field together.
AUGMENTATIONS = {
    "none": Augmentation(),
    "affine": _AFFINE,
    "elastic": Augmentation(
        shift=2.0, rotation=10.0, scale=0.1, shear=10.0, elastic_alpha=34.0, elastic_sigma=4.0
    ),
    # "affine" and what real pictures add: pens of other widths, focus, sensor
    # noise, grey paper.
    "pictures": Augmentation(
        shift=2.5,
        rotation=12.0,
        scale=0.12,
        shear=12.0,
        stroke=1.0,
        blur=1.2,
        noise=0.35,
        background=0.5,
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
    images = transform(images, matrix, shift, displacement)
    if augmentation.changes_pixels:
        images = change_pixels(images, augmentation, rng)
    return images.reshape(X.shape)


def change_pixels(
    images: np.ndarray, augmentation: Augmentation, rng: np.random.Generator
) -> np.ndarray:
    """Stroke width, blur, noise and background changed as `augmentation` says, each on about
    half of the images (N, H, W) in [0, 1]; the result stays in [0, 1]."""
    N = len(images)
    dtype = images.dtype
    chosen = rng.random((4, N)) < 0.5  # (4, N): which images get each change
    amount = rng.uniform(-1, 1, N) * augmentation.stroke * chosen[0]  # (N,)
    grown = _plus_neighbourhood(images, np.maximum) - images
    shrunk = 0.5 * (_plus_neighbourhood(images, np.minimum) - images)
    weight = amount[:, None, None].astype(dtype)
    images = images + np.where(weight > 0, weight * grown, -weight * shrunk)
    if augmentation.blur:
        sigma = rng.uniform(0, augmentation.blur, N) * chosen[1]
        G = _blur_matrices(images.shape[1], sigma).astype(dtype)  # (N, H, H)
        images = G @ images @ G.transpose(0, 2, 1)
    noise = rng.uniform(0, augmentation.noise, N) * chosen[2]
    images = images + noise[:, None, None].astype(dtype) * rng.standard_normal(
        images.shape, dtype=np.float32
    ).astype(dtype)
    images = np.clip(images, 0.0, 1.0)
    page = (rng.uniform(0, augmentation.background, N) * chosen[3])[:, None, None].astype(dtype)
    return page + (1 - page) * images


def _plus_neighbourhood(images: np.ndarray, reduce: np.ufunc) -> np.ndarray:
    """reduce (np.maximum or np.minimum) over each pixel of (N, H, W) and its four neighbours,
    zeros beyond the edge."""
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1)))
    out = images.copy()
    for rows, cols in [(slice(0, -2), slice(1, -1)), (slice(2, None), slice(1, -1))]:
        reduce(out, padded[:, rows, cols], out=out)
    for rows, cols in [(slice(1, -1), slice(0, -2)), (slice(1, -1), slice(2, None))]:
        reduce(out, padded[:, rows, cols], out=out)
    return out


def _blur_matrices(size: int, sigma: np.ndarray) -> np.ndarray:
    """(N, size, size) Gaussian blur matrices of widths sigma (N,), weights summing to 1 over
    the whole kernel (the edge sees zeros); a width near 0 gives the identity."""
    sigma = np.maximum(sigma, 0.05)[:, None, None]  # (N, 1, 1)
    distance = np.arange(size)[:, None] - np.arange(size)[None, :]  # (size, size)
    offsets = np.arange(-size, size + 1)
    norm = np.exp(-(offsets**2) / (2 * sigma**2)).sum(axis=2, keepdims=True)  # (N, 1, 1)
    return np.exp(-(distance**2) / (2 * sigma**2)) / norm


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
