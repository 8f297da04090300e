"""Fingerprints of training images: equal images match, others don't, any dtype."""

from __future__ import annotations

import numpy as np

from mnist_nn.provenance import fingerprint, image_hashes, overlap_fraction

rng = np.random.default_rng(0)
IMAGES = rng.integers(0, 256, (4000, 28, 28), dtype=np.uint8)


def test_equal_images_hash_equal_and_different_ones_differ():
    hashes = image_hashes(IMAGES)
    assert len(np.unique(hashes)) == len(IMAGES)
    np.testing.assert_array_equal(image_hashes(IMAGES[::-1]), hashes[::-1])
    changed = IMAGES[:1].copy()
    changed[0, 0, 0] ^= 1
    assert image_hashes(changed)[0] != hashes[0]


def test_scaled_floats_hash_like_their_uint8_pixels():
    scaled = IMAGES[:100].astype(np.float32) / 255
    np.testing.assert_array_equal(image_hashes(scaled), image_hashes(IMAGES[:100]))


def test_overlap_is_estimated_from_a_fraction_of_the_images():
    training = fingerprint(IMAGES[:3000])
    assert 100 < len(training) < 300  # about one in 16 of 3,000
    assert overlap_fraction(training, IMAGES[3000:]) == 0.0
    assert overlap_fraction(training, IMAGES[:3000]) == 1.0
    half = overlap_fraction(training, IMAGES[1000:])  # 2,000 of these 3,000 were trained on
    assert 0.5 < half < 0.85
