"""What a trained model remembers about its data: a fingerprint of its training images, so that an
evaluation set that overlaps them is caught (testing on training digits flatters any model)."""

from __future__ import annotations

import numpy as np

# One image in KEEP_ONE_IN has its hash kept: a 60,000-image training set leaves ~3,750 hashes
# (30 KB), and an evaluation set that shares even 2% of its images with it still shows dozens.
KEEP_ONE_IN = 16
_CHUNK = 4096  # images hashed at a time: 25 MB of uint64 per chunk


def image_hashes(X: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each image's pixels, (N,) uint64: equal images, equal hashes.

    Each image's values (made integers: uint8 as they are, floats in [0, 1] times 255, rounded)
    are multiplied by fixed random odd 64-bit numbers and summed with wrap-around, in one integer
    matrix product per chunk, so no Python loop runs per image.
    """
    X = np.asarray(X).reshape(len(X), -1)
    multipliers = np.random.default_rng(2024).integers(0, 2**63, X.shape[1], dtype=np.uint64)
    multipliers = multipliers * np.uint64(2) + np.uint64(1)
    hashes = np.empty(len(X), dtype=np.uint64)
    for start in range(0, len(X), _CHUNK):
        chunk = X[start : start + _CHUNK]
        if chunk.dtype != np.uint8:
            chunk = np.rint(np.clip(chunk, 0.0, 1.0) * 255)
        hashes[start : start + _CHUNK] = (chunk.astype(np.uint64) + np.uint64(1)) @ multipliers
    return hashes


def fingerprint(X: np.ndarray) -> np.ndarray:
    """The sorted hashes of about one training image in KEEP_ONE_IN (which ones depends only on
    the image, so the same images are kept whenever they appear)."""
    hashes = image_hashes(X)
    return np.unique(hashes[hashes % KEEP_ONE_IN == 0])


def overlap_fraction(training_fingerprint: np.ndarray, X: np.ndarray) -> float:
    """Estimated share of the images X that were among the training images (0 to 1)."""
    hashes = image_hashes(X)
    sampled = hashes[hashes % KEEP_ONE_IN == 0]
    if len(sampled) == 0:
        return 0.0
    return float(np.isin(sampled, training_fingerprint).mean())
