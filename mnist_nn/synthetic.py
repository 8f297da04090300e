"""Digit-like 28x28 images drawn by code from pen strokes, for offline demos and tests.

These are not MNIST and never stand in for it silently: ask for them by name
(load_dataset("synthetic") or load_synthetic()).
"""

from __future__ import annotations

import numpy as np

IMAGE_SIZE = 28
PIXELS_PER_UNIT = 10.0  # the stroke box is 2 units tall: digits fill about 20 px, like MNIST
CHUNK = 512  # samples rendered together: big enough to vectorise, small enough for the cache


def _arc(cx: float, cy: float, rx: float, ry: float, start: float, end: float) -> np.ndarray:
    """Points (P, 2) on an elliptic arc; angles in degrees, y pointing down like image rows."""
    n_segments = max(2, round(abs(end - start) / 30))  # one segment per 30 degrees
    theta = np.radians(np.linspace(start, end, n_segments + 1))
    return np.stack([cx + rx * np.cos(theta), cy + ry * np.sin(theta)], axis=1)


def _line(*points: tuple[float, float]) -> np.ndarray:
    return np.array(points, dtype=float)


def _join(*pieces: np.ndarray) -> np.ndarray:
    return np.concatenate(pieces)


# Each digit is a list of strokes; a stroke is a polyline (P, 2) in a box x in [-0.6, 0.6],
# y in [-1, 1] (top to bottom). Arcs are polylines too, so everything is line segments.
DIGIT_STROKES: dict[int, list[np.ndarray]] = {
    0: [_arc(0, 0, 0.55, 0.95, 0, 360)],
    1: [_line((-0.22, -0.72), (0.05, -1.0), (0.0, 1.0))],
    2: [_join(_arc(0, -0.45, 0.5, 0.52, 195, 380), _line((-0.55, 1.0), (0.6, 1.0)))],
    3: [_join(_arc(0, -0.5, 0.45, 0.5, 200, 450), _arc(0, 0.5, 0.52, 0.5, 270, 510)[1:])],
    4: [_line((0.25, -1.0), (-0.55, 0.35), (0.6, 0.35)), _line((0.25, -1.0), (0.25, 1.0))],
    5: [_join(_line((0.5, -1.0), (-0.35, -1.0), (-0.4, -0.1)), _arc(0, 0.4, 0.52, 0.58, 235, 510))],
    6: [_arc(0.45, 0.45, 0.9, 1.45, 250, 180), _arc(0, 0.45, 0.45, 0.52, 180, 540)],
    7: [_line((-0.5, -1.0), (0.55, -1.0), (-0.05, 1.0))],
    8: [_arc(0, -0.5, 0.42, 0.48, 90, 450), _arc(0, 0.48, 0.5, 0.52, 270, 630)],
    9: [_arc(0, -0.45, 0.48, 0.52, 0, 360), _line((0.48, -0.45), (0.3, 1.0))],
}


def make_synthetic_digits(
    n_samples: int, seed: int | np.random.Generator | None = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n_samples`` digit images: X uint8 (n, 28, 28), y uint8 (n,), balanced labels.

    Every image gets its own wobble of the stroke points, rotation, slant, scale, shift,
    pen thickness, ink level and noise, all from one seeded generator.
    """
    if n_samples < 0:
        raise ValueError(f"n_samples must be at least 0, got {n_samples}")
    rng = np.random.default_rng(seed)
    y = rng.permutation(np.arange(n_samples) % 10).astype(np.uint8)  # balanced, shuffled
    X = np.empty((n_samples, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for digit in range(10):
        members = np.flatnonzero(y == digit)
        X[members] = _draw_digit(digit, len(members), rng)
    return X, y


def _draw_digit(digit: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """n varied images (n, 28, 28) uint8 of one digit."""
    strokes = DIGIT_STROKES[digit]
    # A random affine map per sample: rotation, slant (shear), size and width, then a shift.
    angle = np.radians(rng.uniform(-12, 12, n))
    slant = rng.uniform(-0.35, 0.25, n)
    scale = PIXELS_PER_UNIT * rng.uniform(0.8, 1.05, n)
    width = rng.uniform(0.75, 1.15, n)
    cos, sin = np.cos(angle), np.sin(angle)
    R = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)  # (n, 2, 2)
    S = np.zeros((n, 2, 2))  # x' = width x + slant y (y points down: slant < 0 leans right)
    S[:, 0, 0], S[:, 0, 1], S[:, 1, 1] = width, slant, 1.0
    M = scale[:, None, None] * (R @ S)  # (n, 2, 2) maps stroke units to pixels
    offset = (IMAGE_SIZE - 1) / 2 + rng.uniform(-1.5, 1.5, (n, 1, 2))  # (n, 1, 2)

    centre = _ink_centre(strokes)
    segments = []  # endpoints (n, 2, 2) of every line segment, already in pixel coordinates
    for stroke in strokes:
        points = stroke - centre + rng.normal(0, 0.035, (n, *stroke.shape))  # (n, P, 2) wobbly pen
        points = points @ M.transpose(0, 2, 1) + offset  # (n, P, 2) pixels
        segments += [points[:, i : i + 2] for i in range(len(stroke) - 1)]

    radius = rng.uniform(0.8, 1.8, n).astype(np.float32)  # half the pen width, pixels
    ink = rng.uniform(0.75, 1.0, n).astype(np.float32)
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    for start in range(0, n, CHUNK):
        part = slice(start, start + CHUNK)
        distance = np.sqrt(_squared_distance_to_segments([s[part] for s in segments]))
        # Anti-aliased pen: full ink inside the radius, fading to 0 over about one pixel.
        A = np.clip((radius[part, None, None] - distance) / 1.2 + 0.5, 0, 1)  # (n, 28, 28)
        # Uneven ink along the stroke; the background stays exactly 0, as in MNIST.
        A *= ink[part, None, None] * (1 + 0.1 * rng.standard_normal(A.shape, dtype=np.float32))
        images[part] = np.clip(A * 255 + 0.5, 0, 255).astype(np.uint8)
    return images


def _ink_centre(strokes: list[np.ndarray]) -> np.ndarray:
    """Centre of mass (2,) of the strokes as drawn lines; MNIST centres digits the same way."""
    starts = np.concatenate([stroke[:-1] for stroke in strokes])  # (S, 2)
    ends = np.concatenate([stroke[1:] for stroke in strokes])  # (S, 2)
    lengths = np.linalg.norm(ends - starts, axis=1)  # (S,)
    return (lengths[:, None] * (starts + ends) / 2).sum(axis=0) / lengths.sum()


def _squared_distance_to_segments(segments: list[np.ndarray]) -> np.ndarray:
    """Squared distance (n, 28, 28) from each pixel centre to the nearest segment.

    For a segment from a to b and a pixel p: t = clip((p - a).(b - a) / |b - a|^2, 0, 1) is the
    nearest point's position along the segment, and the distance is |p - a - t (b - a)|.
    Only the loop over segments is in Python; every sample and pixel is handled at once.
    """
    n = len(segments[0])
    grid = np.arange(IMAGE_SIZE, dtype=np.float32)
    best = np.full((n, IMAGE_SIZE, IMAGE_SIZE), np.inf, dtype=np.float32)
    t = np.empty_like(best)
    ex, ey = np.empty_like(best), np.empty_like(best)
    for segment in segments:
        a = segment[:, 0].astype(np.float32)  # (n, 2)
        u = (segment[:, 1] - segment[:, 0]).astype(np.float32)  # (n, 2)
        inverse_length2 = 1.0 / np.maximum((u**2).sum(1), 1e-6)  # (n,)
        dx = grid[None, None, :] - a[:, 0, None, None]  # (n, 1, 28): x is the column
        dy = grid[None, :, None] - a[:, 1, None, None]  # (n, 28, 1): y is the row
        ux, uy = u[:, 0, None, None], u[:, 1, None, None]
        # Separable pieces are (n, 1, 28) or (n, 28, 1); only the sums below are full size.
        np.add(
            dx * (ux * inverse_length2[:, None, None]),
            dy * (uy * inverse_length2[:, None, None]),
            out=t,
        )
        np.clip(t, 0, 1, out=t)
        np.multiply(t, ux, out=ex)
        np.subtract(dx, ex, out=ex)
        np.multiply(t, uy, out=ey)
        np.subtract(dy, ey, out=ey)
        ex *= ex
        ey *= ey
        ex += ey
        np.minimum(best, ex, out=best)
    return best


def load_synthetic(
    n_train: int = 60_000, n_test: int = 10_000, seed: int | np.random.Generator | None = 0
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Synthetic digits in load_mnist's structure: ``(X_train, y_train), (X_test, y_test)``."""
    rng = np.random.default_rng(seed)
    return make_synthetic_digits(n_train, rng), make_synthetic_digits(n_test, rng)


# Pictures that are not digits, to check that a model says so: each kind drawn as a
# learner might give it, dark ink on a white page of PAGE_SIDE pixels, before any preparation.
PAGE_SIDE = 160
LETTER_STROKES: dict[str, list[np.ndarray]] = {
    "A": [_line((-0.6, 1), (0, -1), (0.6, 1)), _line((-0.35, 0.3), (0.35, 0.3))],
    "E": [_line((0.55, -1), (-0.5, -1), (-0.5, 1), (0.55, 1)), _line((-0.5, 0), (0.35, 0))],
    "F": [_line((0.55, -1), (-0.5, -1), (-0.5, 1)), _line((-0.5, 0), (0.35, 0))],
    "H": [_line((-0.5, -1), (-0.5, 1)), _line((0.5, -1), (0.5, 1)), _line((-0.5, 0), (0.5, 0))],
    "K": [
        _line((-0.5, -1), (-0.5, 1)),
        _line((0.5, -1), (-0.5, 0.1)),
        _line((-0.2, -0.2), (0.55, 1)),
    ],
    "M": [_line((-0.6, 1), (-0.5, -1), (0, 0.4), (0.5, -1), (0.6, 1))],
    "N": [_line((-0.5, 1), (-0.5, -1), (0.5, 1), (0.5, -1))],
    "P": [_join(_line((-0.5, 1), (-0.5, -1)), _arc(-0.5, -0.5, 0.95, 0.5, 270, 450)[1:])],
    "R": [
        _join(_line((-0.5, 1), (-0.5, -1)), _arc(-0.5, -0.5, 0.95, 0.5, 270, 450)[1:]),
        _line((-0.2, 0.0), (0.55, 1)),
    ],
    "T": [_line((-0.6, -1), (0.6, -1)), _line((0, -1), (0, 1))],
    "V": [_line((-0.6, -1), (0, 1), (0.6, -1))],
    "W": [_line((-0.6, -1), (-0.3, 1), (0, -0.2), (0.3, 1), (0.6, -1))],
    "X": [_line((-0.55, -1), (0.55, 1)), _line((0.55, -1), (-0.55, 1))],
    "Y": [_line((-0.55, -1), (0, 0)), _line((0.55, -1), (0, 0), (0, 1))],
    "#": [
        _line((-0.25, -1), (-0.35, 1)),
        _line((0.35, -1), (0.25, 1)),
        _line((-0.6, -0.35), (0.6, -0.35)),
        _line((-0.6, 0.35), (0.6, 0.35)),
    ],
    "+": [_line((-0.6, 0), (0.6, 0)), _line((0, -0.6), (0, 0.6))],
    "=": [_line((-0.6, -0.25), (0.6, -0.25)), _line((-0.6, 0.25), (0.6, 0.25))],
    "%": [
        _line((0.55, -1), (-0.55, 1)),
        _arc(-0.3, -0.6, 0.2, 0.25, 0, 360),
        _arc(0.3, 0.6, 0.2, 0.25, 0, 360),
    ],
}
SHAPE_STROKES: dict[str, list[np.ndarray]] = {
    "triangle": [_line((0, -1), (0.9, 0.7), (-0.9, 0.7), (0, -1))],
    "square": [_line((-0.8, -0.8), (0.8, -0.8), (0.8, 0.8), (-0.8, 0.8), (-0.8, -0.8))],
    "star": [np.array([[np.sin(a), -np.cos(a)] for a in np.radians(np.arange(0, 721, 144))])],
    "arrow": [_line((-0.9, 0), (0.9, 0)), _line((0.5, -0.35), (0.9, 0), (0.5, 0.35))],
    "grid": [_line((-0.8, y), (0.8, y)) for y in (-0.8, 0, 0.8)]
    + [_line((x, -0.8), (x, 0.8)) for x in (-0.8, 0, 0.8)],
    "heart": [
        _join(
            _arc(-0.4, -0.4, 0.4, 0.4, 0, -180),
            _line((-0.8, -0.4), (0, 0.9), (0.8, -0.4)),
            _arc(0.4, -0.4, 0.4, 0.4, 0, -180)[::-1],
        )
    ],
}
NON_DIGIT_KINDS = (
    "letter",
    "symbol",
    "shape",
    "scribble",
    "plot",
    "noise",
    "near-empty",
    "dash",
    "dot",
)


def make_non_digits(
    n_per_kind: int, seed: int | np.random.Generator | None = 0
) -> tuple[list[np.ndarray], list[str]]:
    """Pictures (PAGE_SIDE, PAGE_SIDE) uint8 of things that are not digits, n_per_kind of each of
    NON_DIGIT_KINDS, and each picture's kind: letters (A, E, F, H, ...), symbols (#, +, =, %),
    shapes (triangle, square, star, arrow, grid, heart; no circle, which is a 0), scribbles,
    plots (axes, a curve, ticks), noise (scattered specks), near-empty pages (one faint speck),
    dashes and single dots. Dark ink on white, each with its own size, place, slant and pen."""
    rng = np.random.default_rng(seed)
    pictures, kinds = [], []
    for kind in NON_DIGIT_KINDS:
        for _ in range(n_per_kind):
            pictures.append(_draw_non_digit(kind, rng))
            kinds.append(kind)
    return pictures, kinds


def _draw_non_digit(kind: str, rng: np.random.Generator) -> np.ndarray:
    from PIL import Image, ImageDraw

    picture = Image.new("L", (PAGE_SIDE, PAGE_SIDE), 255)
    pen = ImageDraw.Draw(picture)
    ink = int(rng.integers(0, 80))
    width = int(rng.integers(2, 9))
    for stroke in _non_digit_strokes(kind, rng):
        points = [tuple(point) for point in stroke]
        if len(points) == 1:
            x, y = points[0]
            radius = rng.uniform(1.5, 12.0) if kind == "dot" else 1.0 + width / 3
            pen.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)
        else:
            pen.line(points, fill=ink, width=width, joint="curve")
    if kind == "near-empty":
        ink = int(rng.integers(150, 230))  # faint: a smudge, not a stroke
        picture = Image.eval(picture, lambda value: value if value == 255 else ink)
    return np.asarray(picture)


def _placed(strokes: list[np.ndarray], rng: np.random.Generator) -> list[np.ndarray]:
    """Strokes in unit coordinates turned, slanted, sized and moved onto the page (pixels)."""
    angle = np.radians(rng.uniform(-15, 15))
    slant = rng.uniform(-0.3, 0.3)
    size = rng.uniform(0.2, 0.42) * PAGE_SIDE
    M = size * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    M = M @ np.array([[1.0, slant], [0.0, 1.0]])
    centre = rng.uniform(0.4, 0.6, 2) * PAGE_SIDE
    return [(stroke + rng.normal(0, 0.02, stroke.shape)) @ M.T + centre for stroke in strokes]


def _non_digit_strokes(kind: str, rng: np.random.Generator) -> list[np.ndarray]:
    """The strokes (each (P, 2) page pixels; one point: a dot) of one picture of a kind."""
    if kind in ("letter", "symbol"):
        names = [name for name in LETTER_STROKES if name.isalpha() == (kind == "letter")]
        return _placed(LETTER_STROKES[names[rng.integers(len(names))]], rng)
    if kind == "shape":
        return _placed(SHAPE_STROKES[list(SHAPE_STROKES)[rng.integers(len(SHAPE_STROKES))]], rng)
    if kind == "scribble":
        steps = rng.normal(0, 1, (int(rng.integers(12, 30)), 2))
        walk = np.cumsum(steps + 0.6 * np.roll(steps, 1, axis=0), axis=0)
        walk = (walk - walk.mean(0)) / np.abs(walk - walk.mean(0)).max()
        return _placed([walk], rng)
    if kind == "plot":
        return _placed(_plot_strokes(rng), rng)
    if kind == "noise":
        return [point[None] for point in rng.uniform(5, PAGE_SIDE - 5, (rng.integers(30, 300), 2))]
    if kind == "near-empty":
        return [rng.uniform(20, PAGE_SIDE - 20, (1, 2))]
    if kind == "dash":
        return _placed([_line((-1, 0), (1, 0))], rng)
    return [rng.uniform(30, PAGE_SIDE - 30, (1, 2))]  # "dot"


def _plot_strokes(rng: np.random.Generator) -> list[np.ndarray]:
    """A small chart in unit coordinates: two axes, ticks, one or two curves."""
    strokes = [_line((-1, -1), (-1, 1), (1, 1))]
    strokes += [_line((x, 1), (x, 1.08)) for x in np.linspace(-0.6, 0.9, 4)]
    x = np.linspace(-0.9, 0.95, 25)
    for _ in range(int(rng.integers(1, 3))):
        rate, level = rng.uniform(1.5, 5), rng.uniform(0.3, 0.8)
        strokes.append(np.stack([x, level - (level + 0.8) * np.exp(-rate * (x + 0.9))], axis=1))
    return strokes
