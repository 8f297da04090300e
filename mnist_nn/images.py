"""A picture of one digit (a drawing, a photo, a PNG with transparency) turned into the 28x28
input MNIST networks expect: read_image, prepare_digit_image, load_digit_image."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image


def prepare_digit_image(image: np.ndarray) -> np.ndarray:
    """Turn a picture of one digit into an MNIST-style (28, 28) uint8 input.

    Follows how MNIST itself was made (LeCun et al., 1998): grayscale, light digit on a dark
    background, the digit cropped and scaled to fit a 20x20 box keeping its aspect ratio, then
    placed in 28x28 so that its centre of mass sits at the centre. Dark-on-light and light-on-dark
    pictures both work: the border decides which is the background.
    """
    gray = _to_grayscale(image)  # (H, W) floats in [0, 1]
    if gray.shape[0] < 8 or gray.shape[1] < 8:
        raise ValueError(f"the image is {gray.shape[1]}x{gray.shape[0]} pixels; use at least 8x8")
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    background = np.median(border)
    ink = np.abs(gray - background)  # 0 on the background, up to 1 on the strokes
    if ink.max() < 0.15:
        raise ValueError(
            "the image looks blank (no digit stands out from the background); "
            "draw the digit with a clear contrast, e.g. black on white"
        )
    ink = np.clip((ink - 0.1 * ink.max()) / (0.9 * ink.max()), 0.0, 1.0)  # drop faint noise
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    digit = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]

    scale = 20.0 / max(digit.shape)
    new_height = max(1, round(digit.shape[0] * scale))
    new_width = max(1, round(digit.shape[1] * scale))
    digit = _resize(digit, new_height, new_width)  # fits in 20x20

    # Place it so that the centre of mass lands on the centre of the 28x28 canvas.
    row_mass, col_mass = digit.sum(axis=1), digit.sum(axis=0)
    centre_row = (row_mass * np.arange(new_height)).sum() / row_mass.sum()
    centre_col = (col_mass * np.arange(new_width)).sum() / col_mass.sum()
    top = int(np.clip(round(13.5 - centre_row), 0, 28 - new_height))
    left = int(np.clip(round(13.5 - centre_col), 0, 28 - new_width))
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top : top + new_height, left : left + new_width] = digit
    return np.round(canvas * 255).astype(np.uint8)


def read_image(path: str | os.PathLike) -> np.ndarray:
    """The pixels of a PNG or JPEG file as they are: (H, W), (H, W, 3) or (H, W, 4) uint8."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}; check the path")
    try:
        with Image.open(path) as picture:
            picture.load()
            # Palette images become RGBA, black-and-white (1-bit) ones 8-bit gray.
            conversions = {"P": "RGBA", "1": "L", "CMYK": "RGB"}
            return np.asarray(picture.convert(conversions.get(picture.mode, picture.mode)))
    except (OSError, ValueError) as error:
        raise ValueError(
            f"could not read {path} as an image ({error}); save the digit as PNG or JPEG"
        ) from None


def load_digit_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG or JPEG of one digit and return it as an MNIST-style (28, 28) uint8 input."""
    return prepare_digit_image(read_image(path))


def _to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 3) or (H, W, 4) pixels, integer or float -> (H, W) floats in [0, 1]."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(
            f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}"
        )
    if image.dtype == bool:  # black-and-white: True is white
        image = image.astype(np.float64)
    elif np.issubdtype(image.dtype, np.integer):
        image = image / float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError("the image contains NaN or inf pixels")
        image = np.clip(image, 0.0, 1.0)
    else:
        raise ValueError(f"expected integer or float pixels, got dtype {image.dtype}")
    if image.ndim == 2:
        return image
    if image.shape[2] in (2, 4):
        # Composite over white: drawings saved with a transparent background are usually
        # dark strokes meant to be seen on a white page.
        alpha = image[..., -1:]
        image = image[..., :-1] * alpha + (1.0 - alpha)
    if image.shape[2] == 1:
        return image[..., 0]
    return image[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (H, W) float image with Pillow's anti-aliased resampling."""
    picture = Image.fromarray(image.astype(np.float32))  # mode "F"
    resized = picture.resize((width, height), resample=Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized), 0.0, 1.0)
