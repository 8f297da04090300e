"""Augmentation: identity, shifts, seeds, ranges and dtypes, against a naive bilinear loop."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_nn.augment import (
    AUGMENTATIONS,
    Augmentation,
    augment,
    bilinear_sample,
    change_pixels,
    elastic_field,
    make_augmenter,
    random_affine,
    transform,
)
from mnist_nn.model import build_mlp
from mnist_nn.settings import Settings
from mnist_nn.train import fit


def blobs(n: int = 6, size: int = 28, seed: int = 0) -> np.ndarray:
    """Float images (n, size, size) in [0, 1]: a bright blob away from the border."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    centres = rng.uniform(10, size - 10, (n, 2))
    squared = (rows - centres[:, 0, None, None]) ** 2 + (cols - centres[:, 1, None, None]) ** 2
    return np.exp(-squared / 4.0) * rng.uniform(0.5, 1.0, (n, 1, 1))


def centre_of_mass(images: np.ndarray) -> np.ndarray:
    rows, cols = np.mgrid[: images.shape[1], : images.shape[2]]
    mass = images.sum(axis=(1, 2))
    return np.stack([(images * rows).sum((1, 2)) / mass, (images * cols).sum((1, 2)) / mass], 1)


def identity(n: int) -> np.ndarray:
    return np.broadcast_to(np.eye(2), (n, 2, 2))


def test_identity_settings_change_nothing():
    images = blobs()
    rng = np.random.default_rng(0)
    assert np.array_equal(augment(images, Augmentation(), rng), images)
    assert np.array_equal(transform(images, identity(6), np.zeros((6, 2))), images)
    X = np.arange(6 * 784).reshape(6, 784) % 256
    assert make_augmenter("none", seed=0)(X) is X


@pytest.mark.parametrize("shift", [(2.0, -3.0), (0.5, 1.25), (-1.5, 0.0)])
def test_a_pure_shift_moves_the_centre_of_mass_by_that_shift(shift):
    images = blobs()
    moved = transform(images, identity(6), np.tile(shift, (6, 1)))
    np.testing.assert_allclose(
        centre_of_mass(moved) - centre_of_mass(images), [shift] * 6, atol=1e-5
    )


def test_a_rotation_keeps_the_centre_and_the_ink():
    images = np.zeros((1, 29, 29))
    images[0, 14, 10:19] = 1.0  # a horizontal bar through the centre
    angle = np.radians(90)
    matrix = np.array([[[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]]])
    turned = transform(images, matrix, np.zeros((1, 2)))
    np.testing.assert_allclose(turned[0], images[0].T, atol=1e-6)  # now a vertical bar


def test_the_same_seed_gives_the_same_batch_and_each_call_a_new_one():
    X = (blobs() * 255).astype(np.uint8)
    first = augment(X, "elastic", np.random.default_rng(3))
    assert np.array_equal(first, augment(X, "elastic", np.random.default_rng(3)))
    augmenter = make_augmenter("elastic", seed=3)
    assert not np.array_equal(augmenter(X), augmenter(X))  # fresh every batch and epoch


@pytest.mark.parametrize("name", ["affine", "elastic", "pictures"])
@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.float64])
def test_outputs_stay_in_0_1_with_the_input_shape(name, dtype):
    images = blobs(8, seed=1)
    X = (images * 255).astype(np.uint8) if dtype == np.uint8 else images.astype(dtype)
    for shape in [(8, 28, 28), (8, 1, 28, 28), (8, 784)]:
        out = augment(X.reshape(shape), name, np.random.default_rng(0))
        assert out.shape == shape
        assert out.dtype == (np.float32 if dtype == np.uint8 else dtype)
        assert out.min() >= 0.0 and out.max() <= 1.0
        assert not np.array_equal(out.reshape(8, 28, 28), X / (255 if dtype == np.uint8 else 1))


def test_uint8_in_matches_scaled_floats_in():
    images = blobs()
    X = (images * 255).round().astype(np.uint8)
    from_uint8 = augment(X, "elastic", np.random.default_rng(5))
    from_float = augment(
        X.astype(np.float32) / np.float32(255), "elastic", np.random.default_rng(5)
    )
    np.testing.assert_allclose(from_uint8, from_float, atol=1e-6)


def naive_bilinear(image: np.ndarray, row: float, col: float) -> float:
    """One value by the textbook formula, zeros outside the image."""
    H, W = image.shape

    def pixel(r: int, c: int) -> float:
        return image[r, c] if 0 <= r < H and 0 <= c < W else 0.0

    r0, c0 = int(np.floor(row)), int(np.floor(col))
    dr, dc = row - r0, col - c0
    top = (1 - dc) * pixel(r0, c0) + dc * pixel(r0, c0 + 1)
    bottom = (1 - dc) * pixel(r0 + 1, c0) + dc * pixel(r0 + 1, c0 + 1)
    return (1 - dr) * top + dr * bottom


def test_bilinear_sampling_matches_a_loop_inside_and_outside_the_image():
    rng = np.random.default_rng(0)
    images = rng.random((3, 5, 7))
    rows, cols = rng.uniform(-3, 8, (3, 40)), rng.uniform(-3, 10, (3, 40))
    expected = [
        [naive_bilinear(images[n], rows[n, p], cols[n, p]) for p in range(40)] for n in range(3)
    ]
    np.testing.assert_allclose(bilinear_sample(images, rows, cols), expected, atol=1e-6)


def test_random_maps_stay_within_their_limits():
    augmentation = Augmentation(shift=2.0, rotation=10.0, scale=0.1, shear=0.0)
    matrix, shift = random_affine(500, augmentation, np.random.default_rng(0))
    assert np.abs(shift).max() <= 2.0
    sizes = np.sqrt(np.linalg.det(matrix))  # rotation has det 1, scale s gives s^2
    assert sizes.min() >= 0.9 - 1e-9 and sizes.max() <= 1.1 + 1e-9
    angles = np.degrees(np.arctan2(matrix[:, 0, 1], matrix[:, 0, 0]))
    assert np.abs(angles).max() <= 10.0 + 1e-9


def test_the_elastic_field_is_smooth_and_scaled_by_alpha():
    field = elastic_field((4, 28, 28), alpha=34.0, sigma=4.0, rng=np.random.default_rng(0))
    assert field.shape == (4, 2, 28, 28)
    neighbour_step = np.abs(np.diff(field, axis=-1)).mean()
    assert neighbour_step < 0.2 * np.abs(field).mean()  # smooth: neighbours move together
    assert 0.3 < np.abs(field).mean() < 3.0  # about a pixel, as Simard's alpha 34, sigma 4 give


def test_presets_are_the_settings_choices():
    assert AUGMENTATIONS["none"].is_identity
    assert Settings(augment="Elastic").augment == "elastic"
    with pytest.raises(ValueError, match="augment"):
        Settings(augment="mixup")


def test_a_settings_round_trip_with_augment_on_gives_bit_identical_weights():
    X = (blobs(64, seed=2) * 255).astype(np.uint8)
    y = np.arange(64) % 10
    settings = Settings(hidden_sizes=(8,), n_epochs=2, batch_size=16, augment="elastic", seed=4)
    weights = []
    for run_settings in (settings, Settings.from_dict(settings.to_dict())):
        model = build_mlp((8,), seed=4)
        fit(model, X, y, run_settings, progress=False)
        weights.append(model.get_weights())
    for first, second in zip(*weights, strict=True):
        assert np.array_equal(first, second)
    plain = build_mlp((8,), seed=4)
    fit(plain, X, y, settings.replace(augment="none"), progress=False)
    assert not np.array_equal(plain.get_weights()[0], weights[0][0])  # augmentation did act


def test_pixel_changes_each_do_what_they_say():
    images = np.repeat(blobs(1, seed=2), 400, axis=0).astype(np.float32)  # (400, 28, 28)
    images[:, 0, 0] = 0.0
    rng = np.random.default_rng(0)
    grey = change_pixels(images, Augmentation(background=0.5), rng)
    page = grey[:, 0, 0]  # a corner: background only
    assert np.mean(page == 0) == pytest.approx(0.5, abs=0.08) and page.max() <= 0.5
    np.testing.assert_allclose(grey.max(axis=(1, 2)), images.max(axis=(1, 2)) * (1 - page) + page)
    wider = change_pixels(images, Augmentation(stroke=1.0), rng)
    ink = (wider > 0.3).sum(axis=(1, 2))  # more ink for some, less for others, same for half
    assert (ink > (images[0] > 0.3).sum()).any() and (ink < (images[0] > 0.3).sum()).any()
    blurred = change_pixels(images, Augmentation(blur=1.5), rng)
    assert (blurred.max(axis=(1, 2)) < images.max() - 0.01).mean() > 0.3  # peaks spread out
    np.testing.assert_allclose(blurred.sum(axis=(1, 2)), images.sum(axis=(1, 2)), rtol=0.02)
    noisy = change_pixels(images, Augmentation(noise=0.3), rng)
    changed = (np.abs(noisy - images) > 1e-6).any(axis=(1, 2))
    assert changed.mean() == pytest.approx(0.5, abs=0.08)


def test_the_presets_without_pixel_changes_draw_as_before():
    rng, again = np.random.default_rng(5), np.random.default_rng(5)
    X = blobs(4, seed=3)
    matrix, shift = random_affine(4, AUGMENTATIONS["affine"], again)
    np.testing.assert_array_equal(augment(X, "affine", rng), transform(X, matrix, shift))
