"""Draw the example digit pictures in this folder (run: python examples/make_examples.py).

They stand in for a learner's own photo or drawing: one dark-on-light PNG, one light-on-dark
JPEG, larger than 28x28 and off-centre, so the notebook shows the whole preprocessing path.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

HERE = Path(__file__).resolve().parent


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


if __name__ == "__main__":
    draw_three().save(HERE / "digit-3.png")
    draw_seven().save(HERE / "digit-7.jpg", quality=90)
    print("wrote", HERE / "digit-3.png", "and", HERE / "digit-7.jpg")
