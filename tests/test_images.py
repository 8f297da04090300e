"""Turning a learner's own picture into an MNIST-style input (images.load_digit_image)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mnist_nn.images import load_digit_image, prepare_digit_image, read_image


def dark_seven_on_white(height: int = 120, width: int = 90) -> np.ndarray:
    """A thick dark 7 drawn off-centre on a white page, as floats in [0, 1]."""
    page = np.ones((height, width))
    page[15:25, 10:60] = 0.0  # the bar
    for row in range(25, 100):  # the slanted stroke, ten pixels wide
        column = 60 - (row - 25) * 30 // 75
        page[row, column - 10 : column] = 0.0
    return page


def test_output_is_mnist_like():
    digit = prepare_digit_image(dark_seven_on_white())
    assert digit.shape == (28, 28) and digit.dtype == np.uint8
    assert digit.max() == 255 and digit[0].max() == 0  # light ink, dark empty border
    rows, columns = np.nonzero(digit > 0)
    assert max(np.ptp(rows), np.ptp(columns)) + 1 <= 21  # fits the 20x20 box (+ resampling)
    mass = digit.astype(float)
    centre_row = (mass.sum(axis=1) * np.arange(28)).sum() / mass.sum()
    centre_column = (mass.sum(axis=0) * np.arange(28)).sum() / mass.sum()
    assert abs(centre_row - 13.5) <= 1.0 and abs(centre_column - 13.5) <= 1.0


def test_dark_on_light_and_light_on_dark_give_the_same_input():
    page = dark_seven_on_white()
    np.testing.assert_array_equal(prepare_digit_image(page), prepare_digit_image(1.0 - page))


def test_rgb_uint8_and_transparent_png(tmp_path):
    page = (dark_seven_on_white() * 255).astype(np.uint8)
    expected = prepare_digit_image(page)
    rgb = np.repeat(page[..., None], 3, axis=2)
    np.testing.assert_array_equal(prepare_digit_image(rgb), expected)
    # Black strokes on a fully transparent background, as drawing apps often save them.
    rgba = np.zeros(page.shape + (4,), dtype=np.uint8)
    rgba[..., 3] = 255 - page
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "seven.png")
    assert np.abs(load_digit_image(tmp_path / "seven.png").astype(int) - expected).max() <= 2


def test_jpeg_file_round_trip(tmp_path):
    page = (dark_seven_on_white() * 255).astype(np.uint8)
    Image.fromarray(page).save(tmp_path / "seven.jpg", quality=95)
    from_file = load_digit_image(tmp_path / "seven.jpg").astype(int)
    from_array = prepare_digit_image(page).astype(int)
    assert np.abs(from_file - from_array).mean() < 3  # JPEG is lossy, but only a little


def test_blank_image_is_rejected():
    with pytest.raises(ValueError, match="blank"):
        prepare_digit_image(np.full((50, 50), 0.8))


@pytest.mark.parametrize("shape", [(28,), (28, 28, 5), (4, 4)])
def test_wrong_shapes_are_rejected(shape):
    with pytest.raises(ValueError, match="image"):
        prepare_digit_image(np.zeros(shape))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no image file"):
        load_digit_image(tmp_path / "nothing.png")
    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is text, not a picture")
    with pytest.raises(ValueError, match="PNG or JPEG"):
        load_digit_image(not_an_image)


def test_read_image_gives_the_pixels_as_they_are(tmp_path):
    page = (dark_seven_on_white() * 255).astype(np.uint8)
    rgb = np.stack([page, page // 2, 255 - page], axis=2)
    Image.fromarray(rgb).save(tmp_path / "seven.png")
    np.testing.assert_array_equal(read_image(tmp_path / "seven.png"), rgb)
    with pytest.raises(FileNotFoundError, match="no image file"):
        read_image(tmp_path / "nothing.png")


def test_black_and_white_png_gives_the_same_digit_as_grayscale(tmp_path):
    page = np.round(dark_seven_on_white() * 255).astype(np.uint8)  # pure black and white
    Image.fromarray(page).convert("1").save(tmp_path / "one-bit.png")
    Image.fromarray(page).save(tmp_path / "gray.png")
    assert read_image(tmp_path / "one-bit.png").dtype == np.uint8
    np.testing.assert_array_equal(
        load_digit_image(tmp_path / "one-bit.png"), load_digit_image(tmp_path / "gray.png")
    )
    # A boolean array given directly (True = white) is understood too.
    np.testing.assert_array_equal(prepare_digit_image(page > 127), prepare_digit_image(page))
