"""A picture of one digit (a photo of paper, a screen drawing, a PNG with transparency) turned into
the 28x28 input MNIST networks expect: read_image, load_digit_image, prepare_digit_image, and
digit_image_steps, which also returns the steps in between, to show what the network saw."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageFilter

WORKING_SIDE = 1024  # larger pictures are shrunk first: a phone photo is 4000x3000
READ_SIDE = 2 * WORKING_SIDE  # files are shrunk to this while they are read
MAX_FILE_PIXELS = 60_000_000  # a 60-megapixel camera's photo, and Pillow's bombs refused
NOISY = 2 / 255  # a page noisier than this is smoothed a little before looking for ink
MIN_SIDE = 8  # pixels: a smaller picture cannot hold a readable digit
MIN_CONTRAST = 0.05  # a stroke differs from the page by at least ~13 grey levels
MIN_SIGNAL_TO_NOISE = 5.0  # ... and by 5 noise deviations: thresholded noise reaches about 4
FINE_SIDE = 80  # strokes are measured and thickened with the digit's longer side this long
MNIST_STROKE_WIDTH = 10.7 / 80  # median over MNIST's training digits, measured that way
AREA_SIDE = 256  # pixels of the copy in which the page or canvas is looked for
MIN_PAGE_SHARE = 0.1  # a page or canvas this large at least
MIN_PAGE_CONTRAST = 0.15  # a page stands out from the desk around it by this much at least
MAX_INK_SHARE = 0.12  # of a page or canvas, at most (a digit's ink covers a few percent)
PAGE_INSET = 0.03  # the found page is shrunk by this share towards its centre
MIN_REGION_PIXELS = 6  # the digit's largest piece (a faint 28x28 one: 7); salt noise: 1 to 3
MIN_PIECE_FRACTION = 0.05  # a piece kept besides the largest: a 5's detached bar, an i-like dot
NEAR_FRACTION = 0.5  # ... if it lies this close to the largest, as a share of its longer side
BLANK_MESSAGE = (
    "the image looks blank (no digit stands out from the background); "
    "draw the digit with a clear contrast, e.g. black on white"
)


def prepare_digit_image(image: np.ndarray) -> np.ndarray:
    """Turn a picture of one digit into an MNIST-style (28, 28) uint8 input.

    Finds the ink, not the page: the page's uneven lighting is estimated and removed, the ink
    threshold comes from the picture itself (Otsu's method), dark-on-light and light-on-dark both
    work (the ink is whatever is the minority), and specks apart from the digit are dropped. Then,
    as MNIST was made (LeCun et al., 1998): light digit on a dark background, cropped and scaled
    to fit a 20x20 box keeping its aspect ratio, placed in 28x28 with its centre of mass at pixel
    (14, 14), where MNIST's own digits have it. A picture with no digit in it raises ValueError
    ("looks blank").
    """
    return digit_image_steps(image)["digit"]


def digit_image_steps(image: np.ndarray) -> dict[str, np.ndarray]:
    """Prepare a picture of one digit as prepare_digit_image does, keeping each step to show it.

    Returns a dict of arrays, in the order they are made:

    - ``"grayscale"``: (H, W) floats in [0, 1], the picture in gray (shrunk if it was large);
    - ``"drawing_area"``: (H', W') floats, the page or canvas found in it (a sheet on a desk
      straightened, a screenshot's canvas without its bars), or the whole picture;
    - ``"background_removed"``: (H', W') floats in [0, 1], the ink light on a black page;
    - ``"ink_mask"``: (H', W') bool, the pixels above the ink threshold;
    - ``"kept_regions"``: (H', W') bool, the connected pieces of ink kept as the digit;
    - ``"strokes"``: the digit cropped and scaled so its longer side is FINE_SIDE pixels, thin
      strokes thickened toward MNIST's width and the strongest ink stretched to 1;
    - ``"digit"``: (28, 28) uint8, the network's input.

    A picture with no digit raises DigitNotFoundError, whose ``steps`` hold the steps made.
    """
    steps: dict[str, np.ndarray] = {}
    try:
        steps["grayscale"] = gray = _to_grayscale(image)
        steps["drawing_area"] = area = find_drawing_area(gray)
        ink, noise = _remove_background(area)
        steps["background_removed"] = ink
        steps["ink_mask"], strength = _find_ink(ink, noise)
        steps["kept_regions"] = kept = _keep_digit_regions(steps["ink_mask"])
    except DigitNotFoundError as error:
        error.steps = steps
        raise
    # Two pixels around the kept pieces bring back their soft edges, which fall below threshold.
    steps["strokes"] = _normalize_strokes(_crop(strength * _dilate(kept, steps=2)))
    steps["digit"] = _fit_and_centre(steps["strokes"])
    return steps


class DigitNotFoundError(ValueError):
    """A picture with no digit in it ("looks blank"); ``steps`` holds the steps made before."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message or BLANK_MESSAGE)
        self.steps: dict[str, np.ndarray] = {}


def find_drawing_area(gray: np.ndarray) -> np.ndarray:
    """The page or canvas inside a picture (H, W) in [0, 1], straightened; else the picture.

    Like a document scanner: the largest bright connected region (Otsu's threshold on a copy
    about AREA_SIDE pixels wide) is the page if it is page-like: with the ink on it it fills
    its quadrilateral, is solid (not bold strokes), holds no more than MAX_INK_SHARE of ink, is
    brighter than what lies around it by MIN_PAGE_CONTRAST, covers MIN_PAGE_SHARE of the
    picture or more, and does not already reach all four edges.
    Its four corners are its extreme points along x + y and x - y, and a perspective map (a
    homography from the four corners) straightens it into a rectangle. A sheet on a desk loses
    the desk; a screenshot's canvas loses the status bar, title bar and buttons. Very bold light
    strokes on black can pass for a page: 8 to 14 of 2,000 MNIST training digits enlarged to
    112-280 pixels did.
    """
    step = max(1, -(-max(gray.shape) // AREA_SIDE))
    small = gray[::step, ::step]
    if min(gray.shape) < 4 * 28 or np.ptp(small) < 0.2:  # not a photo or screenshot
        return gray
    bright = small > _otsu_threshold(small.ravel(), low=float(small.min()) - 1e-6)
    labels = _label_regions(bright)
    values, counts = np.unique(labels[bright], return_counts=True)
    page = labels == values[np.argmax(counts)]
    rows, columns = np.nonzero(page)
    touches = [rows.min() == 0, columns.min() == 0]
    touches += [rows.max() == page.shape[0] - 1, columns.max() == page.shape[1] - 1]
    corners = _corners(rows, columns) * step  # (4, 2): top-left, top-right, bottom-right, -left
    area = _quadrilateral_area(corners)
    filled = _fill_holes(page)  # with the ink on it
    if all(touches) or area < MIN_PAGE_SHARE * gray.size or not _is_solid(filled, area / step**2):
        return gray
    if np.count_nonzero(filled & ~page) > MAX_INK_SHARE * np.count_nonzero(filled):
        return gray  # more "ink" than a page holds: the loops of bold light strokes
    if small[page].mean() - small[~filled].mean() < MIN_PAGE_CONTRAST:
        return gray  # the brighter side of one unevenly lit page
    if abs(np.count_nonzero(filled) * step**2 / area - 1) > 0.05:  # not a quadrilateral
        return gray
    centre = corners.mean(axis=0)
    corners = centre + (corners - centre) * (1 - PAGE_INSET)  # off the page's shaded edges
    return _straighten(gray, corners)


def _is_solid(mask: np.ndarray, area: float) -> bool:
    """Whether a region (H, W) bool spanning a quadrilateral of `area` pixels is a solid sheet
    rather than bold strokes: eroded by a tenth of the quadrilateral's side, it keeps at least
    40% of its pixels (a square keeps 64%; strokes, even bold ones, keep little)."""
    side = 2 * max(1, int(0.1 * np.sqrt(area))) + 1
    eroded = Image.fromarray(mask.astype(np.uint8) * 255).filter(ImageFilter.MinFilter(side))
    return np.count_nonzero(np.asarray(eroded)) >= 0.4 * np.count_nonzero(mask)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask (H, W) with every hole filled: the pixels off it that no path off it joins to
    the edge of the picture."""
    labels = _label_regions(~mask)
    edge = np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])
    return mask | ~np.isin(labels, edge)


def _corners(rows: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The (row, column) pixels of a region farthest to the top-left, top-right, bottom-right and
    bottom-left: the extremes of x + y and x - y, as (4, 2) floats."""
    total, difference = rows + columns, columns - rows
    picks = [np.argmin(total), np.argmax(difference), np.argmax(total), np.argmin(difference)]
    return np.stack([rows[picks], columns[picks]], axis=1).astype(float)


def _quadrilateral_area(corners: np.ndarray) -> float:
    """The area of a quadrilateral from its (4, 2) corners in order (the shoelace formula)."""
    y, x = corners[:, 0], corners[:, 1]
    return 0.5 * abs(float(x @ np.roll(y, -1) - y @ np.roll(x, -1)))


def _straighten(gray: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The quadrilateral `corners` (4, 2) of `gray` mapped onto a rectangle of about its size:
    each output pixel looks up its place in the picture through the homography H that sends
    the rectangle's corners to the quadrilateral's, and is interpolated bilinearly."""
    sides = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)  # top, right, ...
    width = max(MIN_SIDE, round((sides[0] + sides[2]) / 2))
    height = max(MIN_SIDE, round((sides[1] + sides[3]) / 2))
    target = np.array([[0, 0], [0, width - 1], [height - 1, width - 1], [height - 1, 0]], float)
    H = _homography(target, corners)
    rows, columns = np.mgrid[0:height, 0:width].astype(float)
    points = np.stack([rows.ravel(), columns.ravel(), np.ones(rows.size)])  # (3, h w)
    y, x, w = H @ points
    return _bilinear(gray, y / w, x / w).reshape(height, width)


def _homography(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 3x3 projective map H (H[2, 2] = 1) sending four (row, column) points to four others:
    8 linear equations in H's other 8 entries, two per point (Hartley and Zisserman's DLT)."""
    equations, values = [], []
    for (y, x), (v, u) in zip(source, target, strict=True):
        equations.append([y, x, 1, 0, 0, 0, -v * y, -v * x])
        equations.append([0, 0, 0, y, x, 1, -u * y, -u * x])
        values += [v, u]
    return np.append(np.linalg.solve(np.array(equations), np.array(values)), 1.0).reshape(3, 3)


def _bilinear(image: np.ndarray, y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """image (H, W) sampled at float positions y, x (clamped to the image), bilinearly."""
    y = np.clip(y, 0, image.shape[0] - 1)
    x = np.clip(x, 0, image.shape[1] - 1)
    top, left = (
        np.minimum(y.astype(int), image.shape[0] - 2),
        np.minimum(x.astype(int), image.shape[1] - 2),
    )
    dy, dx = y - top, x - left
    upper = image[top, left] * (1 - dx) + image[top, left + 1] * dx
    lower = image[top + 1, left] * (1 - dx) + image[top + 1, left + 1] * dx
    return upper * (1 - dy) + lower * dy


def read_image(path: str | os.PathLike, upright: bool = True) -> np.ndarray:
    """The pixels of a PNG or JPEG file: (H, W), (H, W, 3) or (H, W, 4) uint8.

    A phone stores a photo as its sensor saw it and says in the EXIF orientation tag how to turn
    it; with ``upright`` (the default) the pixels are turned as every viewer shows them.
    A picture with more than MAX_FILE_PIXELS pixels is refused from its header, before it is
    decoded; one larger than READ_SIDE on a side is shrunk while it is read (JPEG decodes at
    a reduced scale directly), so a huge photo costs tens of megabytes, not gigabytes.
    """
    pixels, orientation = read_image_as_stored(path)
    return turn_upright(pixels, orientation) if upright else pixels


def read_image_as_stored(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """The pixels of a PNG or JPEG file as stored, and its EXIF orientation (1 to 8; 1 when the
    file has none): read_image without turning the picture upright."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no image file at {path}; check the path")
    try:
        with warnings.catch_warnings():
            # Image.open already warns of a large picture; the pixel count is checked below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as picture:
                _check_pixel_count(path, picture.size)
                orientation = picture.getexif().get(ExifTags.Base.Orientation, 1)
                picture.draft(picture.mode, (READ_SIDE, READ_SIDE))  # JPEG: decode smaller
                picture.load()
                picture = _shrink(picture)
                # Palette images become RGBA, black-and-white (1-bit) ones 8-bit gray.
                conversions = {"P": "RGBA", "1": "L", "CMYK": "RGB"}
                pixels = np.asarray(picture.convert(conversions.get(picture.mode, picture.mode)))
    except Image.DecompressionBombError:  # raised by Pillow from the header, before decoding
        raise ValueError(
            f"{path}: the picture has more than {MAX_FILE_PIXELS:,} pixels; save a smaller copy "
            "(a digit needs only a few hundred pixels a side)"
        ) from None
    except (OSError, ValueError) as error:
        if str(error).startswith(str(path)):
            raise
        raise ValueError(
            f"could not read {path} as an image ({error}); save the digit as PNG or JPEG"
        ) from None
    return pixels, orientation if orientation in EXIF_ORIENTATIONS else 1


def _shrink(picture: Image.Image) -> Image.Image:
    """A picture larger than READ_SIDE on a side shrunk to it, keeping MIN_SIDE pixels or more on
    its short side (a long thin strip stays thin, and is refused as such later)."""
    scale = max(READ_SIDE / max(picture.size), MIN_SIDE / min(picture.size))
    if scale >= 1.0:
        return picture
    size = tuple(max(MIN_SIDE, round(side * scale)) for side in picture.size)
    return picture.resize(size, Image.Resampling.BOX, reducing_gap=2.0)  # as thumbnail does


# EXIF orientation -> what turns the stored pixels upright, and how that is said.
EXIF_ORIENTATIONS = {
    1: (lambda pixels: pixels, "as stored"),
    2: (lambda pixels: pixels[:, ::-1], "mirrored left-right"),
    3: (lambda pixels: pixels[::-1, ::-1], "turned 180 degrees"),
    4: (lambda pixels: pixels[::-1], "mirrored top-bottom"),
    5: (lambda pixels: pixels.swapaxes(0, 1), "mirrored along the diagonal"),
    6: (lambda pixels: np.rot90(pixels, k=-1), "turned 90 degrees clockwise"),
    7: (lambda pixels: pixels.swapaxes(0, 1)[::-1, ::-1], "mirrored along the other diagonal"),
    8: (lambda pixels: np.rot90(pixels, k=1), "turned 90 degrees anticlockwise"),
}


def turn_upright(pixels: np.ndarray, orientation: int) -> np.ndarray:
    """Stored pixels (H, W, ...) turned as EXIF orientation 1 to 8 says a viewer shows them."""
    return np.ascontiguousarray(EXIF_ORIENTATIONS[orientation][0](pixels))


def _check_pixel_count(path: Path, size: tuple[int, int]) -> None:
    width, height = size
    if min(width, height) < MIN_SIDE:
        raise ValueError(f"{path}: {_too_small(width, height)}")
    if width * height > MAX_FILE_PIXELS:
        raise ValueError(
            f"{path}: the picture is {width}x{height} pixels, more than the "
            f"{MAX_FILE_PIXELS:,} read here; save a smaller copy (a digit needs only a few "
            "hundred pixels a side)"
        )


def load_digit_image(path: str | os.PathLike) -> np.ndarray:
    """Read a PNG or JPEG of one digit and return it as an MNIST-style (28, 28) uint8 input."""
    image = read_image(path)
    try:
        return prepare_digit_image(image)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _to_grayscale(image: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1..4) pixels, integer, bool or float -> (H, W) floats in [0, 1]."""
    image = _unit_floats(image)
    if image.ndim == 2:
        return image
    channels = image.shape[2]
    if channels >= 3:
        gray = image[..., :3] @ np.array([0.299, 0.587, 0.114])  # ITU-R BT.601 luma
    else:
        gray = image[..., 0]
    if channels in (2, 4):
        return _flatten_alpha(gray, image[..., -1])
    return gray


def _unit_floats(image: np.ndarray) -> np.ndarray:
    """Pixels of any integer, bool or float dtype as floats in [0, 1], shrunk if very large."""
    image = np.asarray(image)
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4)):
        raise ValueError(
            f"expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {image.shape}"
        )
    if image.dtype == bool:  # black-and-white: True is white
        scale = 1.0
    elif np.issubdtype(image.dtype, np.integer):
        scale = float(np.iinfo(image.dtype).max)
    elif np.issubdtype(image.dtype, np.floating):
        if not np.isfinite(image).all():
            raise ValueError("the image contains NaN or inf pixels")
        scale = 1.0
    else:
        raise ValueError(f"expected integer or float pixels, got dtype {image.dtype}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ValueError(_too_small(image.shape[1], image.shape[0]))
    # Averaging blocks of factor x factor pixels before anything else keeps a phone photo fast
    # (and averages away sensor noise); the few rows and columns past the last block are dropped.
    # A long thin strip is shrunk less, so that its short side keeps MIN_SIDE pixels.
    factor = min(-(-max(image.shape[:2]) // WORKING_SIDE), min(image.shape[:2]) // MIN_SIDE)
    if factor > 1:
        height, width = image.shape[0] // factor, image.shape[1] // factor
        blocks = image[: height * factor, : width * factor]
        image = blocks.reshape(height, factor, width, factor, -1).mean(axis=(1, 3))
        image = image.squeeze(axis=2) if blocks.ndim == 2 else image
    return np.clip(image / scale, 0.0, 1.0)


def _too_small(width: int, height: int) -> str:
    return f"the image is {width}x{height} pixels; a digit needs at least {MIN_SIDE} pixels a side"


def _flatten_alpha(gray: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """One gray picture from gray and alpha (H, W) in [0, 1].

    Drawing apps save strokes on a transparent background, in one colour (black or white): then
    the colour says nothing and alpha is the ink, returned as dark ink on a white page. Otherwise
    the picture is composited onto a page its visible pixels stand out from.
    """
    if alpha.min() >= 1.0:
        return gray
    visible = gray[alpha > 0.5]
    if visible.size == 0 or np.ptp(np.percentile(visible, [5, 95])) < 0.1:
        return 1.0 - alpha
    page = 0.0 if visible.mean() > 0.5 else 1.0
    return gray * alpha + page * (1.0 - alpha)


def _remove_background(gray: np.ndarray) -> tuple[np.ndarray, float]:
    """The ink (H, W) in [0, 1], light on a black page, and the page's noise level.

    The ink is whichever side of the page's brightness holds more contrast (summed beyond the
    noise): it is the minority, so the page sets the background and the noise level.
    """
    residual = gray - _estimate_background(gray)
    noise = 1.4826 * float(np.median(np.abs(residual)))  # robust standard deviation (MAD)
    if noise > NOISY:
        residual = _smooth(residual)
        noise = 1.4826 * float(np.median(np.abs(residual)))
    floor = _noise_floor(noise)
    light = np.clip(residual - floor, 0.0, None).sum()
    dark = np.clip(-residual - floor, 0.0, None).sum()
    ink = residual if light > dark else -residual
    return np.clip(ink, 0.0, 1.0), noise


def _smooth(image: np.ndarray) -> np.ndarray:
    """A 3x3 binomial blur of (H, W): weights [1, 2, 1] / 4 along each axis; edges repeated."""
    padded = np.pad(image, 1, mode="edge")
    rows = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) / 4
    return (rows[:, :-2] + 2 * rows[:, 1:-1] + rows[:, 2:]) / 4


def _noise_floor(noise: float) -> float:
    """Ink below this is the page: three noise deviations, and at least half a grey level."""
    return 3.0 * noise + 0.5 / 255


def _estimate_background(gray: np.ndarray) -> np.ndarray:
    """A smooth estimate (H, W) of the page's brightness under uneven lighting.

    A quadratic surface (a gradient, a vignette) fitted to the medians of an 8x8 grid of blocks,
    then refitted a few times without the blocks it misses by far: those the ink dominates.
    """
    height, width = gray.shape
    n = 8
    block_height, block_width = -(-height // n), -(-width // n)
    # Mirrored past the bottom and right edges so that the blocks cover the whole picture: a
    # small bold digit may fill most of it, and the page at its edges must all count.
    padding = ((0, block_height * n - height), (0, block_width * n - width))
    blocks = np.pad(gray, padding, mode="symmetric").reshape(n, block_height, n, block_width)
    medians = np.median(blocks, axis=(1, 3)).ravel()  # (64,)
    centres = (np.arange(n) + 0.5) / n
    block_y, block_x = np.meshgrid(
        _unit_coordinates(centres * block_height * n, height),
        _unit_coordinates(centres * block_width * n, width),
        indexing="ij",
    )
    design = np.stack(_quadratic_terms(block_y.ravel(), block_x.ravel()), axis=1)  # (64, 6)
    fitted = np.full(medians.shape, np.median(medians))
    for _ in range(4):
        residual = medians - fitted
        spread = max(1.4826 * np.median(np.abs(residual)), 0.01)
        keep = np.abs(residual) <= 3.0 * spread
        coefficients = np.linalg.lstsq(design[keep], medians[keep], rcond=None)[0]
        fitted = design @ coefficients
    y = _unit_coordinates(np.arange(height) + 0.5, height)[:, None]
    x = _unit_coordinates(np.arange(width) + 0.5, width)[None, :]
    return sum(c * term for c, term in zip(coefficients, _quadratic_terms(y, x), strict=True))


def _unit_coordinates(positions: np.ndarray, size: int) -> np.ndarray:
    """Pixel positions along a side of `size` pixels mapped to [-1, 1], to keep the fit stable."""
    return 2.0 * positions / size - 1.0


def _quadratic_terms(y: np.ndarray, x: np.ndarray) -> list[np.ndarray]:
    """The six terms of a quadratic surface in y and x: 1, y, x, y^2, yx, x^2."""
    return [np.ones_like(y * x), y, x, y * y, y * x, x * x]


def _find_ink(ink: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray]:
    """The ink mask (H, W) bool and the ink strength (H, W) in [0, 1] (1 for a full stroke).

    The threshold is Otsu's (1979), over the pixels that stand out from the page's noise, so a
    small digit on a large noisy page is not outweighed by it. A picture whose "strokes" differ
    little from the page, or no more than its noise does, is refused as blank.
    """
    floor = _noise_floor(noise)
    candidates = ink[ink > floor]
    if candidates.size == 0:
        raise DigitNotFoundError()
    # Capped at half the strongest ink: on a clean page every candidate is ink, and Otsu would
    # split the strokes themselves where their brightness varies (a shaded, clipped stroke).
    strongest = float(np.percentile(candidates, 99))
    mask = ink > min(_otsu_threshold(candidates, low=floor), max(strongest / 2, floor))
    level = float(np.median(ink[mask]))  # a typical stroke pixel
    if level < MIN_CONTRAST or level < MIN_SIGNAL_TO_NOISE * noise:
        raise DigitNotFoundError()
    # As in MNIST, where most stroke pixels are saturated: the typical stroke pixel and stronger
    # ones become full ink; the page, its noise and faint halos (JPEG ringing) become 0.
    faint = max(floor, 0.1 * level)
    strength = np.clip((ink - faint) / (level - faint), 0.0, 1.0)
    return mask, strength


def _otsu_threshold(values: np.ndarray, low: float, n_bins: int = 256) -> float:
    """Otsu's (1979) threshold: it splits a histogram of `values` (all > low) into the two classes
    with the largest between-class variance w0 w1 (m0 - m1)^2. Values above it are the ink."""
    counts, edges = np.histogram(values, bins=n_bins, range=(low, float(values.max())))
    centres = (edges[:-1] + edges[1:]) / 2
    weight_low = np.cumsum(counts)  # (n_bins,): values in this bin or below
    weight_high = weight_low[-1] - weight_low
    sum_low = np.cumsum(counts * centres)
    mean_low = sum_low / np.maximum(weight_low, 1)
    mean_high = (sum_low[-1] - sum_low) / np.maximum(weight_high, 1)
    between = weight_low * weight_high * (mean_low - mean_high) ** 2
    return float(edges[np.argmax(between) + 1])


def _keep_digit_regions(mask: np.ndarray) -> np.ndarray:
    """The connected pieces of ink (H, W) bool that make the digit: the largest, and the pieces
    of a reasonable size near it (a 5's detached bar); specks and far-away marks are dropped."""
    labels = _label_regions(mask)
    _, region, sizes = np.unique(labels[mask], return_inverse=True, return_counts=True)
    if sizes.max() < MIN_REGION_PIXELS:
        raise DigitNotFoundError()
    rows, columns = np.nonzero(mask)  # row-major, as labels[mask]
    boxes = _bounding_boxes(region, rows, columns, len(sizes))  # (K, 4): top, bottom, left, right
    # Bars and buttons go if a piece of reasonable size stays (not only specks).
    ui = _looks_like_ui(labels, boxes, mask, sizes)  # (K,)
    others = np.where(ui, 0, sizes)
    if others.max() >= max(MIN_REGION_PIXELS, MIN_PIECE_FRACTION * sizes.max()):
        sizes = others
    top, bottom, left, right = boxes[np.argmax(sizes)]
    row_gap = np.maximum(0, np.maximum(boxes[:, 0] - bottom, top - boxes[:, 1]))
    column_gap = np.maximum(0, np.maximum(boxes[:, 2] - right, left - boxes[:, 3]))
    near = np.maximum(row_gap, column_gap) <= NEAR_FRACTION * max(bottom - top, right - left)
    keep = near & (sizes >= MIN_PIECE_FRACTION * sizes.max()) & (sizes > 0)  # (K,)
    kept = np.zeros_like(mask)
    kept[mask] = keep[region]
    return kept


def _looks_like_ui(
    labels: np.ndarray, boxes: np.ndarray, mask: np.ndarray, sizes: np.ndarray
) -> np.ndarray:
    """(K,) bool: which pieces of ink are a screen's bars or buttons, not strokes.

    A bar runs along an edge of the picture for half its length or more. A button is a frame
    wider than tall, its outline inked (corners included, give or take two pixels) around an
    empty middle, the label's place: a pen's stroke is solid, or has round or ragged ends.
    Specks are not looked at.
    """
    piece_labels = np.unique(labels[mask])  # (K,) in the order of `boxes`
    ui = np.zeros(len(boxes), dtype=bool)
    for k, (top, bottom, left, right) in enumerate(boxes):
        if sizes[k] < MIN_PIECE_FRACTION * sizes.max():
            continue
        height, width = bottom - top + 1, right - left + 1
        along_edge = (top == 0 or bottom == mask.shape[0] - 1) and width >= 0.5 * mask.shape[1]
        along_edge |= (left == 0 or right == mask.shape[1] - 1) and height >= 0.5 * mask.shape[0]
        if along_edge or width < 1.2 * height or height < 6:
            ui[k] = along_edge
            continue
        box = labels[top : bottom + 1, left : right + 1] == piece_labels[k]
        outline = np.concatenate([box[0], box[-1], box[1:-1, 0], box[1:-1, -1]])
        corners = all(box[rows, columns].any() for rows in ROWS3 for columns in ROWS3)
        ui[k] = outline.mean() > 0.85 and corners and not box[height // 2, width // 2]
    return ui


ROWS3 = (slice(0, 3), slice(-3, None))  # the first and the last three rows (or columns)


def _label_regions(mask: np.ndarray) -> np.ndarray:
    """Label the 8-connected regions of a boolean mask (H, W): each pixel of a region gets the
    smallest flat index in it, pixels off the mask get mask.size.

    The ink pixels form a graph, an edge between any two that touch; FastSV (Zhang, Azad and Hu,
    2020; after Shiloach and Vishkin, 1982) then finds its connected components with whole-array
    steps: each pixel points to a smaller one in its region, trees are hooked under smaller trees
    along the edges and pointers are shortcut to their grandparents, until nothing changes. It
    takes a few dozen rounds even for a long winding stroke.
    """
    u, v = _touching_pairs(mask)  # (E,) each: indices into the mask's pixels, in raster order
    parent = np.arange(np.count_nonzero(mask))
    while True:
        grandparent_u, grandparent_v = parent[parent[u]], parent[parent[v]]
        hooked = parent.copy()
        np.minimum.at(hooked, parent[u], grandparent_v)  # hook u's tree under v's, and back
        np.minimum.at(hooked, parent[v], grandparent_u)
        np.minimum.at(hooked, u, grandparent_v)
        np.minimum.at(hooked, v, grandparent_u)
        hooked = np.minimum(hooked, hooked[hooked])  # shortcut
        if np.array_equal(hooked, parent):
            break
        parent = hooked
    labels = np.full(mask.shape, mask.size)
    labels[mask] = np.flatnonzero(mask)[parent]
    return labels


def _touching_pairs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each pair of 8-neighbours on a boolean mask (H, W), once: two (E,) arrays of indices into
    the mask's pixels taken in raster order."""
    height, width = mask.shape
    position = np.cumsum(mask).reshape(mask.shape) - 1  # (H, W): index among the mask's pixels
    u, v = [], []
    for row, column in [(0, 1), (1, -1), (1, 0), (1, 1)]:  # right, and the three below
        here = (slice(0, height - row), slice(max(0, -column), width - max(0, column)))
        there = (slice(row, height), slice(max(0, column), width - max(0, -column)))
        both = mask[here] & mask[there]
        u.append(position[here][both])
        v.append(position[there][both])
    return np.concatenate(u), np.concatenate(v)


def _bounding_boxes(
    region: np.ndarray, rows: np.ndarray, columns: np.ndarray, n_regions: int
) -> np.ndarray:
    """(n_regions, 4) top, bottom, left, right of each region, from each pixel's region index."""
    boxes = np.empty((n_regions, 4), dtype=np.int64)
    boxes[:, [0, 2]] = np.iinfo(np.int64).max
    boxes[:, [1, 3]] = -1
    np.minimum.at(boxes[:, 0], region, rows)
    np.maximum.at(boxes[:, 1], region, rows)
    np.minimum.at(boxes[:, 2], region, columns)
    np.maximum.at(boxes[:, 3], region, columns)
    return boxes


def _filter_3x3(array: np.ndarray, combine: np.ufunc, fill: float | int | bool) -> np.ndarray:
    """Combine each pixel of a (H, W) array with its 8 neighbours (np.logical_or, np.maximum),
    treating pixels past the edge as `fill`."""
    height, width = array.shape
    padded = np.pad(array, 1, constant_values=fill)
    result = array.copy()
    for row in range(3):
        for column in range(3):
            combine(result, padded[row : row + height, column : column + width], out=result)
    return result


def _dilate(mask: np.ndarray, steps: int) -> np.ndarray:
    """Grow a boolean mask (H, W) by `steps` pixels in every direction (8 neighbours)."""
    for _ in range(steps):
        mask = _filter_3x3(mask, np.logical_or, fill=False)
    return mask


def _crop(ink: np.ndarray) -> np.ndarray:
    """The ink (H, W) cropped to the rows and columns that hold any."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _normalize_strokes(digit: np.ndarray) -> np.ndarray:
    """The cropped ink (h, w) scaled so its longer side is FINE_SIDE pixels, its strokes made at
    least MNIST's typical width there, and the strongest ink stretched to full (1.0).

    A ballpoint or pencil digit photographed large has strokes far thinner, relative to its
    height, than MNIST's (about 2.7 of 20 pixels); shrunk to 20x20 they would fade to grey.
    """
    scale = FINE_SIDE / max(digit.shape)
    fine = _resize(
        digit, max(1, round(digit.shape[0] * scale)), max(1, round(digit.shape[1] * scale))
    )
    missing = MNIST_STROKE_WIDTH * FINE_SIDE - _stroke_width(fine)
    if missing >= 2:  # grow by whole pixels on each side: a max filter of odd size
        fine = _max_filter(fine, 2 * round(missing / 2) + 1)
    return fine / max(float(fine.max()), 1e-6)


def _stroke_width(ink: np.ndarray) -> float:
    """The typical width in pixels of the strokes in `ink` (h, w): 2 x area / boundary, since a
    stroke of width w and length L covers w L pixels and has 2 L boundary pixels."""
    mask = ink > 0.5 * float(ink.max())
    padded = np.pad(mask, 1)
    inside = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:] & mask
    boundary = np.count_nonzero(mask) - np.count_nonzero(inside)
    return 2.0 * np.count_nonzero(mask) / max(boundary, 1)


def _max_filter(image: np.ndarray, size: int) -> np.ndarray:
    """Each pixel of a (H, W) float image replaced by the largest in the size x size square
    around it (a grey-level dilation), with Pillow's filter."""
    padded = np.pad(image, size // 2).astype(np.float32)
    grown = Image.fromarray(padded).filter(ImageFilter.MaxFilter(size))
    return np.asarray(grown)[
        size // 2 : size // 2 + image.shape[0], size // 2 : size // 2 + image.shape[1]
    ]


def _fit_and_centre(digit: np.ndarray) -> np.ndarray:
    """Fit the cropped ink (h, w) in [0, 1] in 20x20 keeping its aspect ratio and place it in a
    (28, 28) uint8 canvas with its centre of mass at pixel (14, 14), as MNIST was made."""
    scale = 20.0 / max(digit.shape)
    new_height = max(1, round(digit.shape[0] * scale))
    new_width = max(1, round(digit.shape[1] * scale))
    digit = _resize(digit, new_height, new_width)  # fits in 20x20
    digit = digit / max(float(digit.max()), 1e-6)  # the strongest ink full, as in MNIST

    # MNIST's digits have their centre of mass at pixel (14, 14) (the mean over its training
    # set is (13.98, 14.01)), not at the canvas's middle (13.5, 13.5): half a pixel off both ways
    # cost the MLP 2 points on MNIST's own digits prepared again (98.9% -> 96.6%).
    row_mass, col_mass = digit.sum(axis=1), digit.sum(axis=0)
    centre_row = (row_mass * np.arange(new_height)).sum() / row_mass.sum()
    centre_col = (col_mass * np.arange(new_width)).sum() / col_mass.sum()
    top = int(np.clip(round(14.0 - centre_row), 0, 28 - new_height))
    left = int(np.clip(round(14.0 - centre_col), 0, 28 - new_width))
    canvas = np.zeros((28, 28), dtype=np.float32)
    canvas[top : top + new_height, left : left + new_width] = digit
    return np.round(canvas * 255).astype(np.uint8)


def _resize(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (H, W) float image with Pillow's anti-aliased resampling."""
    picture = Image.fromarray(image.astype(np.float32))  # mode "F"
    resized = picture.resize((width, height), resample=Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized), 0.0, 1.0)
