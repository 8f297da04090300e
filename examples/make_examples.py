"""Draw the example digit pictures shipped in mnist_nn/data/ (python examples/make_examples.py).

They stand in for a learner's own photo or drawing: a dark-on-light PNG, a light-on-dark JPEG,
a phone photo of paper (uneven light, noise, blur, JPEG, the digit small on the page), a screen
drawing and a transparent PNG with white ink, so the notebook shows the whole preprocessing path.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PICTURES = Path(__file__).resolve().parents[1] / "mnist_nn" / "data"  # package data


def draw_three() -> Image.Image:
    """A hand-drawn-looking 3: dark ink on a light, slightly grey page."""
    picture = Image.new("L", (160, 200), color=235)
    pen = ImageDraw.Draw(picture)
    pen.arc((30, 20, 120, 100), start=200, end=90, fill=20, width=24)
    pen.arc((25, 85, 125, 185), start=270, end=160, fill=20, width=24)
    return picture


def draw_seven() -> Image.Image:
    """A 7 with a crossbar: light chalk on a dark board."""
    picture = Image.new("RGB", (220, 180), color=(25, 40, 30))
    pen = ImageDraw.Draw(picture)
    chalk = (240, 240, 230)
    pen.line([(70, 30), (165, 30), (105, 160)], fill=chalk, width=20, joint="curve")
    pen.line([(100, 95), (150, 95)], fill=chalk, width=18)
    return picture


def photograph_four(seed: int = 0) -> Image.Image:
    """A 4 in dark ink, small on an off-white page, as a phone photographs it: light falling off
    across the page (~45 grey levels), a warm tint, slight blur and sensor noise."""
    page = Image.new("L", (640, 480), color=255)
    pen = ImageDraw.Draw(page)
    pen.line([(300, 150), (262, 262), (372, 258)], fill=0, width=12, joint="curve")
    pen.line([(345, 185), (338, 330)], fill=0, width=12)
    ink = 1.0 - np.asarray(page.filter(ImageFilter.GaussianBlur(1.2))) / 255.0  # (H, W)
    y, x = np.mgrid[0:480, 0:640]
    paper = 225 - 45 * (0.6 * x / 640 + 0.4 * y / 480)  # brighter at the top left
    gray = paper - (paper - 40) * ink
    rgb = gray[..., None] * np.array([1.0, 0.96, 0.86])  # warm indoor light
    noise = np.random.default_rng(seed).normal(0, 4, size=rgb.shape)
    return Image.fromarray(np.clip(np.round(rgb + noise), 0, 255).astype(np.uint8))


def draw_five_on_screen() -> Image.Image:
    """A 5 drawn with a finger in a drawing app: light strokes on a dark screen."""
    picture = Image.new("RGB", (320, 320), color=(18, 22, 36))
    pen = ImageDraw.Draw(picture)
    stroke = (235, 240, 255)
    pen.line([(195, 70), (120, 72), (110, 150)], fill=stroke, width=16, joint="curve")
    pen.arc((95, 120, 215, 250), start=210, end=150, fill=stroke, width=16)
    return picture


def draw_two_transparent() -> Image.Image:
    """A 2 in white ink on a fully transparent background, as some drawing apps export it."""
    picture = Image.new("RGBA", (240, 240), color=(255, 255, 255, 0))
    pen = ImageDraw.Draw(picture)
    ink = (255, 255, 255, 255)
    pen.arc((65, 35, 175, 135), start=180, end=35, fill=ink, width=14)
    pen.line([(165, 108), (70, 200), (180, 200)], fill=ink, width=14, joint="curve")
    return picture


if __name__ == "__main__":
    pictures = {
        "digit-3.png": (draw_three(), {}),
        "digit-7.jpg": (draw_seven(), {"quality": 90}),
        "digit-4-paper-photo.jpg": (photograph_four(), {"quality": 80}),
        "digit-5-screen.png": (draw_five_on_screen(), {}),
        "digit-2-transparent.png": (draw_two_transparent(), {}),
    }
    for name, (picture, options) in pictures.items():
        picture.save(PICTURES / name, **options)
        print("wrote", PICTURES / name)
