"""By-hand check for issue 13: how well a saved model reads MNIST test digits made into pictures.

Each of N seeded MNIST test digits is rendered into each kind of picture a learner might give
(a phone photo of paper, a screen drawing, transparent PNGs with dark or light ink), saved as a
file, read back with load_digit_image and classified. Accuracy per kind is printed next to the
model's accuracy on the same digits as they are in MNIST. Not a test: it needs the real files.
Run from the repository's root (PYTHONPATH=. if mnist_nn is not installed):

    python benchmarks/image_reading.py MODEL.npz --data-dir DIR

To measure another preparation, e.g. the one before issue 13, pass its module file:

    git show 95fc668:mnist_nn/images.py > /tmp/old_images.py
    python benchmarks/image_reading.py MODEL --data-dir DIR --images /tmp/old_images.py
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

import mnist_nn as nn
from mnist_nn import images


def digit_ink(digit: np.ndarray, size: int) -> np.ndarray:
    """A 28x28 uint8 MNIST digit scaled to (size, size) ink strength in [0, 1]."""
    picture = Image.fromarray(digit).resize((size, size), resample=Image.Resampling.BICUBIC)
    return np.clip(np.asarray(picture) / 255.0, 0.0, 1.0)


def place(ink: np.ndarray, height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """The ink put at a random place on an empty (height, width) page."""
    page = np.zeros((height, width))
    top = rng.integers(0, height - ink.shape[0] + 1)
    left = rng.integers(0, width - ink.shape[1] + 1)
    page[top : top + ink.shape[0], left : left + ink.shape[1]] = ink
    return page


def paper_photo(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """Dark ink on off-white paper: uneven light, tint, blur, sensor noise, JPEG, small digit."""
    size = int(rng.integers(30, 200))  # the 28x28 box; the digit itself is 20/28 of it
    height, width = (size * rng.uniform(1.3, 6.0, size=2)).astype(int)
    ink = place(digit_ink(digit, size), height, width, rng)
    paper, pen = rng.uniform(0.7, 0.95), rng.uniform(0.05, 0.35)
    gray = paper - (paper - pen) * ink
    angle = rng.uniform(0, 2 * np.pi)
    y, x = np.mgrid[0:height, 0:width]
    ramp = np.cos(angle) * y / height + np.sin(angle) * x / width
    ramp = (ramp - ramp.min()) / max(np.ptp(ramp), 1e-9)
    gray = gray - rng.uniform(0, 45 / 255) * ramp  # up to ~45 grey levels across the page
    tint = rng.uniform(0.8, 1.0, size=3) if rng.random() < 0.5 else np.ones(3)
    rgb = np.clip(gray[..., None] * tint, 0.0, 1.0)
    picture = Image.fromarray(np.round(rgb * 255).astype(np.uint8))
    picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    noisy = np.asarray(picture) + rng.normal(0, rng.uniform(2, 8), size=rgb.shape)
    picture = Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return encode(picture, "JPEG", quality=int(rng.integers(60, 92))), ".jpg"


def screen_drawing(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """Light strokes on a dark screen, any size and place."""
    height, width = rng.integers(100, 600, size=2)
    size = int(rng.uniform(0.15, 1.0) * min(height, width))
    ink = place(digit_ink(digit, size), height, width, rng)[..., None]
    background, stroke = rng.uniform(0.0, 0.25, size=3), rng.uniform(0.8, 1.0, size=3)
    rgb = background + (stroke - background) * ink
    return encode(Image.fromarray(np.round(rgb * 255).astype(np.uint8)), "PNG"), ".png"


def transparent_png(digit: np.ndarray, rng: np.random.Generator, light: bool) -> tuple[bytes, str]:
    """Strokes of one colour on a fully transparent background (alpha is the ink)."""
    height, width = rng.integers(100, 600, size=2)
    size = int(rng.uniform(0.15, 1.0) * min(height, width))
    alpha = place(digit_ink(digit, size), height, width, rng)
    colour = rng.uniform(0.85, 1.0, size=3) if light else rng.uniform(0.0, 0.2, size=3)
    rgba = np.empty((height, width, 4))
    rgba[..., :3] = colour
    # Apps store transparent pixels as black or white; only alpha says they are not there.
    rgba[alpha == 0, :3] = float(rng.integers(0, 2))
    rgba[..., 3] = alpha
    picture = Image.fromarray(np.round(rgba * 255).astype(np.uint8), mode="RGBA")
    return encode(picture, "PNG"), ".png"


def page_on_desk(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A sheet photographed on a desk: a dark-ink digit on white paper, the sheet
    seen in perspective (each corner moved by up to 10% of the sheet), a textured desk darker
    than the paper around it, uneven light, blur, noise and JPEG; a 1600x1200 photo."""
    height, width = 1200, 1600
    page_height = int(rng.uniform(0.55, 0.8) * height)
    page_width = int(page_height * rng.uniform(0.7, 1.4))
    page = np.full((page_height, page_width), rng.uniform(0.8, 0.95))
    size = int(rng.uniform(0.3, 0.6) * min(page_height, page_width))
    ink = place(digit_ink(digit, size), page_height, page_width, rng)
    page -= (page[0, 0] - rng.uniform(0.05, 0.3)) * ink
    centre = np.array([height, width]) / 2 + rng.uniform(-0.1, 0.1, 2) * [height, width]
    half = np.array([page_height, page_width]) / 2
    corners = centre + np.array([[-1, -1], [-1, 1], [1, 1], [1, -1]]) * half  # (row, column)
    corners += rng.uniform(-0.1, 0.1, (4, 2)) * [page_height, page_width]
    flat = np.array(
        [[0, 0], [0, page_width - 1], [page_height - 1, page_width - 1], [page_height - 1, 0]],
        dtype=float,
    )
    H = images._homography(corners, flat)  # photo pixel -> sheet pixel
    rows, columns = np.mgrid[0:height, 0:width].astype(float)
    y, x, w = H @ np.stack([rows.ravel(), columns.ravel(), np.ones(rows.size)])
    y, x = (y / w).reshape(height, width), (x / w).reshape(height, width)
    on_sheet = (y >= 0) & (y <= page_height - 1) & (x >= 0) & (x <= page_width - 1)
    grain = np.sin(rows / rng.uniform(4, 20) + 3 * np.sin(columns / rng.uniform(50, 200)))
    desk = rng.uniform(0.15, 0.5) + 0.05 * grain + rng.normal(0, 0.02, (height, width))
    gray = np.where(on_sheet, images._bilinear(page, y, x), desk)
    gray -= rng.uniform(0, 0.15) * columns / width  # light from one side
    tint = rng.uniform(0.85, 1.0, size=3)
    rgb = np.clip(gray[..., None] * tint, 0.0, 1.0)
    picture = Image.fromarray(np.round(rgb * 255).astype(np.uint8))
    picture = picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    noisy = np.asarray(picture) + rng.normal(0, rng.uniform(2, 6), size=rgb.shape)
    picture = Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return encode(picture, "JPEG", quality=int(rng.integers(70, 92))), ".jpg"


def app_screenshot(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A phone screenshot of a drawing app: a dark status bar with light icons, a
    coloured title bar with its title, a white canvas with the digit drawn in black, and a grey
    toolbar of coloured buttons with labels; 540x1140 pixels, PNG."""
    height, width = 1140, 540
    rgb = np.ones((height, width, 3))
    bars = [int(rng.uniform(0.025, 0.04) * height), int(rng.uniform(0.06, 0.09) * height)]
    toolbar = int(rng.uniform(0.08, 0.12) * height)
    rgb[: bars[0]] = rng.uniform(0.0, 0.3)
    rgb[bars[0] : sum(bars)] = rng.uniform(0.1, 0.8, 3)
    rgb[height - toolbar :] = rng.uniform(0.8, 0.9)
    light = [(4, 10, 30, bars[0] - 4), (width - 80, width - 10, 6, bars[0] - 6)]  # icons
    light.append((20, int(rng.uniform(150, 300)), bars[0] + 15, sum(bars) - 15))  # the title
    for left, right, top, bottom in light:
        rgb[top:bottom, left:right] = 1.0
    for left in np.linspace(15, width - 135, int(rng.integers(2, 5))).astype(int):
        top = height - toolbar + 15
        rgb[top : height - 15, left : left + 120] = rng.uniform(0.1, 0.7, 3)
        rgb[top + 20 : height - 35, left + 20 : left + 100] = 1.0  # its label
    canvas = (sum(bars), height - toolbar)
    size = int(rng.uniform(0.3, 0.8) * width)
    ink = place(digit_ink(digit, size), canvas[1] - canvas[0] - 20, width - 20, rng)
    rgb[canvas[0] + 10 : canvas[1] - 10, 10:-10] *= 1 - ink[..., None]
    return encode(Image.fromarray(np.round(rgb * 255).astype(np.uint8)), "PNG"), ".png"


def thin_pen(digit: np.ndarray, rng: np.random.Generator) -> tuple[bytes, str]:
    """A ballpoint or pencil digit on paper: MNIST's strokes (about 13% of the
    digit's height) thinned to 20-40% of their area (less where a stroke would break), grey or
    dark, in a paper photo's light,
    blur, noise and JPEG."""
    size = int(rng.integers(200, 500))
    thin = Image.fromarray((digit_ink(digit, size) > 0.5).astype(np.uint8) * 255)
    keep = rng.uniform(0.2, 0.4)  # of the ink's area: eroded one pixel at a time to it,
    start = np.count_nonzero(np.asarray(thin))  # never breaking a stroke in two
    pieces = n_pieces(np.asarray(thin) > 0)
    while True:
        thinner = thin.filter(ImageFilter.MinFilter(3))
        mask = np.asarray(thinner) > 0
        if np.count_nonzero(mask) < keep * start or n_pieces(mask) > pieces:
            break
        thin = thinner
    ink = np.asarray(thin.filter(ImageFilter.GaussianBlur(1.0))) / 255.0
    height, page_width = (size * rng.uniform(1.2, 2.0, size=2)).astype(int)
    ink = place(ink, height, page_width, rng)
    paper, pen = rng.uniform(0.75, 0.95), rng.uniform(0.1, 0.55)
    gray = paper - (paper - pen) * ink - rng.uniform(0, 0.1) * np.linspace(0, 1, page_width)
    picture = Image.fromarray(np.round(np.clip(gray, 0, 1) * 255).astype(np.uint8))
    noisy = np.asarray(picture.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0))))
    noisy = noisy + rng.normal(0, rng.uniform(2, 5), size=noisy.shape)
    picture = Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return encode(picture, "JPEG", quality=int(rng.integers(70, 92))), ".jpg"


def n_pieces(mask: np.ndarray) -> int:
    """How many connected pieces a boolean mask (H, W) has."""
    return len(np.unique(images._label_regions(mask)[mask]))


def encode(picture: Image.Image, file_format: str, **options) -> bytes:
    """The picture as the bytes of an image file."""
    buffer = io.BytesIO()
    picture.save(buffer, format=file_format, **options)
    return buffer.getvalue()


KINDS = {
    "paper photo": paper_photo,
    "screen drawing": screen_drawing,
    "transparent PNG, dark ink": lambda digit, rng: transparent_png(digit, rng, light=False),
    "transparent PNG, light ink": lambda digit, rng: transparent_png(digit, rng, light=True),
    "page on a desk": page_on_desk,
    "app screenshot": app_screenshot,
    "thin pen or pencil": thin_pen,
}


def load_preparation(path: str | None):
    """The module whose load_digit_image prepares the pictures: mnist_nn.images or a file."""
    if path is None:
        return images
    spec = importlib.util.spec_from_file_location("preparation", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_kind(kind, digits, preparation, folder: Path, rng) -> tuple[np.ndarray, np.ndarray, float]:
    """Prepared (N, 28, 28) inputs for one kind of picture (zeros where refused), which were
    refused (N,) bool, and the seconds spent preparing."""
    prepared = np.zeros((len(digits), 28, 28), dtype=np.uint8)
    refused, seconds = np.zeros(len(digits), dtype=bool), 0.0
    for i, digit in enumerate(digits):
        data, suffix = KINDS[kind](digit, rng)
        path = folder / f"digit{suffix}"
        path.write_bytes(data)
        start = time.perf_counter()
        try:
            prepared[i] = preparation.load_digit_image(path)
        except ValueError:
            refused[i] = True
        seconds += time.perf_counter() - start
    return prepared, refused, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a model saved by `python -m mnist_nn train`")
    parser.add_argument("--data-dir", required=True, help="folder with MNIST's t10k files")
    parser.add_argument("--n", type=int, default=300, help="digits per kind of picture")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--images", help="a module file to prepare with instead of mnist_nn's")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS))
    args = parser.parse_args()

    model = nn.load_model(args.model)
    preparation = load_preparation(args.images)
    X, y = nn.load_mnist(args.data_dir, split="test", download=False, progress=False)
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(len(X), size=args.n, replace=False)
    digits, labels = X[chosen], y[chosen]
    clean = np.mean(model.predict(digits) == labels)
    print(f"{args.model}, {args.n} MNIST test digits per kind (seed {args.seed})")
    print(f"{'kind of picture':28s} {'read correctly':>14s} {'clean MNIST':>12s} refused  ms/image")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.kinds:
            prepared, refused, seconds = read_kind(kind, digits, preparation, Path(folder), rng)
            accuracy = np.mean((model.predict(prepared) == labels) & ~refused)  # refused: wrong
            milliseconds = 1000 * seconds / args.n
            print(
                f"{kind:28s} {accuracy:14.1%} {clean:12.1%} {refused.sum():7d} {milliseconds:9.1f}"
            )


if __name__ == "__main__":
    main()
