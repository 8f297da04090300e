"""Turning a learner's own picture into an MNIST-style input (images.load_digit_image)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from mnist_nn import images
from mnist_nn.images import (
    _label_regions,
    _otsu_threshold,
    digit_image_steps,
    load_digit_image,
    prepare_digit_image,
    read_image,
    read_image_as_stored,
)


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


# Real pictures: photos of paper, screen drawings, transparent PNGs (issue 13). Each is made
# here from one drawn digit, and must give about the input its clean drawing gives.


def drawn_five(size: int = 120) -> np.ndarray:
    """Ink strength (size, size) in [0, 1] of a 5 whose top bar is drawn apart from the rest."""
    picture = Image.new("L", (size, size), 0)
    pen = ImageDraw.Draw(picture)
    s = size / 100
    width = round(9 * s)
    pen.line([(40 * s, 12 * s), (75 * s, 12 * s)], fill=255, width=width)  # the detached bar
    pen.line([(36 * s, 22 * s), (32 * s, 50 * s)], fill=255, width=width)
    pen.arc((22 * s, 38 * s, 78 * s, 92 * s), start=-150, end=140, fill=255, width=width)
    return np.asarray(picture) / 255.0


def on_page(
    ink: np.ndarray,
    shape: tuple[int, int] = (300, 400),
    at: tuple[int, int] = (120, 230),
    page: float = 0.85,
    pen: float = 0.15,
) -> np.ndarray:
    """The ink drawn with a pen of brightness `pen` on a page of brightness `page`: (H, W)."""
    ink_on_page = np.zeros(shape)
    ink_on_page[at[0] : at[0] + ink.shape[0], at[1] : at[1] + ink.shape[1]] = ink
    return page + (pen - page) * ink_on_page


def shade(gray: np.ndarray, levels: float = 45) -> np.ndarray:
    """Uneven light: a diagonal brightness gradient of `levels` grey levels across the page."""
    y, x = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
    return gray - levels / 255 * (y / gray.shape[0] + x / gray.shape[1]) / 2


def with_noise(gray: np.ndarray, levels: float = 8, seed: int = 0) -> np.ndarray:
    """Sensor noise of `levels` grey levels (standard deviation)."""
    return gray + np.random.default_rng(seed).normal(0, levels / 255, size=gray.shape)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Floats in [0, 1] (clipped) -> uint8 pixels."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def blurred(gray: np.ndarray, radius: float = 1.5) -> np.ndarray:
    """A Gaussian blur, as a slightly out-of-focus photo."""
    picture = Image.fromarray(to_uint8(gray)).filter(ImageFilter.GaussianBlur(radius))
    return np.asarray(picture) / 255.0


def jpeg_round_trip(image: np.ndarray, quality: int = 70) -> np.ndarray:
    """The pixels after saving as JPEG and reading back, as a phone saves a photo."""
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(buffer))


def tinted(gray: np.ndarray, tint: tuple[float, float, float] = (1.0, 0.9, 0.7)) -> np.ndarray:
    """A colour cast (yellowish light): (H, W, 3)."""
    return gray[..., None] * np.array(tint)


def transparent(ink: np.ndarray, colour: int, hidden: int) -> np.ndarray:
    """RGBA strokes of one colour (alpha is the ink); the hidden pixels' colour is `hidden`."""
    rgba = np.zeros(ink.shape + (4,), dtype=np.uint8)
    rgba[..., :3] = np.where(ink[..., None] > 0, colour, hidden)
    rgba[..., 3] = to_uint8(ink)
    return rgba


def paper_photo(ink: np.ndarray) -> np.ndarray:
    """Everything at once: small digit on a large shaded page, tint, blur, noise, JPEG."""
    page = shade(on_page(ink, shape=(600, 800), at=(420, 60), page=0.8, pen=0.25))
    return jpeg_round_trip(with_noise(blurred(tinted(page)[..., 1], 1.0), levels=6), quality=75)


FIVE = drawn_five()
SMALL_FIVE = drawn_five(50)
PICTURES = {
    "shading": lambda: shade(on_page(FIVE)),
    "sensor noise": lambda: with_noise(on_page(FIVE), levels=10),
    "blur": lambda: blurred(on_page(FIVE), radius=2.5),
    "JPEG": lambda: jpeg_round_trip(on_page(FIVE), quality=60),
    "colour tint": lambda: tinted(on_page(FIVE)),
    "small and off-centre on a large page": lambda: on_page(
        SMALL_FIVE, shape=(900, 1200), at=(800, 40)
    ),
    "light on dark": lambda: on_page(FIVE, page=0.1, pen=0.9),
    "shaded light on dark": lambda: shade(on_page(FIVE, page=0.2, pen=0.9), levels=-45),
    "paper photo": lambda: paper_photo(drawn_five(80)),
    "RGBA dark ink": lambda: transparent(FIVE, colour=0, hidden=0),
    "RGBA light ink": lambda: transparent(FIVE, colour=255, hidden=255),
    "RGBA light ink, hidden pixels black": lambda: transparent(FIVE, colour=255, hidden=0),
}


def centre_of_mass(digit: np.ndarray) -> tuple[float, float]:
    """(row, column) of the ink's centre of mass."""
    mass = digit.astype(float)
    rows, columns = np.arange(digit.shape[0]), np.arange(digit.shape[1])
    return (mass.sum(axis=1) @ rows) / mass.sum(), (mass.sum(axis=0) @ columns) / mass.sum()


def correlation_up_to_a_pixel(digit: np.ndarray, reference: np.ndarray) -> float:
    """The best correlation of two (28, 28) inputs over shifts of up to one pixel each way:
    centring rounds to whole pixels, and a thin stroke one pixel off correlates poorly."""
    padded = np.pad(reference.astype(float), 1)
    return max(
        np.corrcoef(digit.ravel().astype(float), padded[r : r + 28, c : c + 28].ravel())[0, 1]
        for r in range(3)
        for c in range(3)
    )


@pytest.mark.parametrize("kind", list(PICTURES))
def test_a_real_picture_gives_the_clean_digits_input(kind):
    clean = prepare_digit_image(on_page(FIVE, page=1.0, pen=0.0))
    digit = prepare_digit_image(PICTURES[kind]())
    rows, columns = np.nonzero(digit)
    assert 19 <= max(np.ptp(rows), np.ptp(columns)) + 1 <= 21, "the digit should fill 20x20"
    centre_row, centre_column = centre_of_mass(digit)
    assert abs(centre_row - 13.5) <= 1.0 and abs(centre_column - 13.5) <= 1.0
    correlation = correlation_up_to_a_pixel(digit, clean)
    assert correlation > 0.8, f"the prepared {kind} differs from the clean digit"


def test_the_pieces_of_a_digit_are_kept_and_specks_dropped():
    steps = digit_image_steps(on_page(FIVE))
    bar = on_page(FIVE) < 0.5
    bar[130:] = False  # the top bar's rows only (the page starts the digit at row 120)
    assert steps["kept_regions"][bar].all(), "the 5's detached bar should be kept"
    specked = on_page(FIVE)
    specked[20:24, 20:24] = 0.15  # a speck of dirt far from the digit
    specked[200:205, 120:125] = 0.15
    np.testing.assert_array_equal(prepare_digit_image(specked), steps["digit"])


def test_digit_image_steps_shows_each_step():
    image = paper_photo(drawn_five(80))
    steps = digit_image_steps(image)
    assert list(steps) == [
        "grayscale",
        "drawing_area",
        "background_removed",
        "ink_mask",
        "kept_regions",
        "strokes",
        "digit",
    ]
    for name in ["grayscale", "background_removed", "ink_mask", "kept_regions"]:
        assert steps[name].shape == image.shape[:2], name
    assert steps["ink_mask"].dtype == bool and steps["kept_regions"].dtype == bool
    assert 0 <= steps["background_removed"].min() and steps["background_removed"].max() <= 1
    assert not (steps["kept_regions"] & ~steps["ink_mask"]).any()
    np.testing.assert_array_equal(steps["digit"], prepare_digit_image(image))


def test_a_large_photo_is_shrunk_and_still_read():
    photo = to_uint8(shade(on_page(drawn_five(300), shape=(1200, 1600), at=(450, 900))))
    clean = prepare_digit_image(on_page(FIVE, page=1.0, pen=0.0))
    steps = digit_image_steps(photo)
    assert steps["grayscale"].shape == (600, 800)  # shrunk 2x
    assert correlation_up_to_a_pixel(steps["digit"], clean) > 0.8


def blank_pictures() -> dict[str, np.ndarray]:
    """Pictures with no digit in them."""
    rng = np.random.default_rng(0)
    return {
        "uniform gray": np.full((200, 300), 0.6),
        "uniform colour": np.full((200, 300, 3), [200, 180, 40], dtype=np.uint8),
        "fully transparent": np.zeros((200, 300, 4), dtype=np.uint8),
        "shaded empty page": to_uint8(with_noise(shade(np.full((300, 400), 0.8)), levels=6)),
        "gaussian noise": np.clip(rng.normal(0.5, 0.15, size=(200, 300)), 0, 1),
        "uniform noise": rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8),
    }


@pytest.mark.parametrize("kind", list(blank_pictures()))
def test_blank_and_noise_pictures_are_refused(kind, tmp_path):
    image = blank_pictures()[kind]
    with pytest.raises(ValueError, match="looks blank"):
        prepare_digit_image(image)
    if image.dtype == np.uint8:  # saved as a file too: then the message names it
        path = tmp_path / "empty.png"
        Image.fromarray(image).save(path)
        with pytest.raises(ValueError, match=r"empty\.png: the image looks blank"):
            load_digit_image(path)


def label_regions_by_flood_fill(mask: np.ndarray) -> np.ndarray:
    """The naive reference: a flood fill from each unlabelled pixel, in raster order."""
    labels = np.full(mask.shape, mask.size)
    for start in zip(*np.nonzero(mask), strict=True):
        if labels[start] != mask.size:
            continue
        labels[start] = start[0] * mask.shape[1] + start[1]
        stack = [start]
        while stack:
            row, column = stack.pop()
            for r in range(max(row - 1, 0), min(row + 2, mask.shape[0])):
                for c in range(max(column - 1, 0), min(column + 2, mask.shape[1])):
                    if mask[r, c] and labels[r, c] == mask.size:
                        labels[r, c] = labels[start]
                        stack.append((r, c))
    return labels


def serpentine(height: int = 41, width: int = 30) -> np.ndarray:
    """One long stroke winding down the mask: labels must travel its whole length."""
    mask = np.zeros((height, width), dtype=bool)
    mask[::4] = True
    mask[1::8, -1] = mask[2::8, -1] = mask[3::8, -1] = True
    mask[5::8, 0] = mask[6::8, 0] = mask[7::8, 0] = True
    return mask


@pytest.mark.parametrize("density", [0.2, 0.4, 0.6, "serpentine"])
def test_label_regions_matches_a_flood_fill(density):
    if density == "serpentine":
        mask = serpentine()
        assert len(np.unique(_label_regions(mask)[mask])) == 1
    else:
        mask = np.random.default_rng(1).random((40, 50)) < density
    np.testing.assert_array_equal(_label_regions(mask), label_regions_by_flood_fill(mask))


def test_otsu_threshold_maximises_the_between_class_variance():
    rng = np.random.default_rng(2)
    values = np.concatenate([rng.normal(0.2, 0.05, 500), rng.normal(0.7, 0.1, 100)]).clip(0.01)
    threshold = _otsu_threshold(values, low=0.0)
    candidates = np.linspace(values.min(), values.max(), 202)[1:-1]

    def between_class_variance(t):
        low, high = values[values <= t], values[values > t]
        return len(low) * len(high) * (low.mean() - high.mean()) ** 2

    best = candidates[np.argmax([between_class_variance(t) for t in candidates])]
    assert abs(threshold - best) < 0.02


def test_a_huge_picture_is_refused_from_its_header_naming_the_file(tmp_path):
    bomb = tmp_path / "bomb.png"
    Image.new("1", (20_000, 20_000)).save(bomb)  # 90 KB on disk, 400 megapixels decoded
    with pytest.raises(ValueError, match="bomb.png.*more than .* pixels"):
        load_digit_image(bomb)


def test_a_picture_past_pillows_warning_size_is_refused_without_its_warning(tmp_path, monkeypatch):
    import warnings

    from mnist_nn import images

    # As a 10000x10000 PNG against the real limits: Pillow warns at open, we refuse.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    monkeypatch.setattr(images, "MAX_FILE_PIXELS", 1_000)
    big = tmp_path / "big.png"
    Image.new("L", (40, 40), 255).save(big)  # 1,600 pixels: over the limit, under twice it
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="big.png: the picture is 40x40 pixels"):
            read_image(big)
    assert [str(w.message) for w in caught] == []


def test_a_large_photo_is_shrunk_while_read(tmp_path):
    from mnist_nn.images import READ_SIDE, read_image

    photo = tmp_path / "big.jpg"
    Image.new("RGB", (5000, 4000), color=(230, 225, 210)).save(photo)
    assert max(read_image(photo).shape[:2]) <= READ_SIDE


# Pictures as phones store them (EXIF orientation), and pictures of impossible shapes.


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_as_pillow_does(orientation, tmp_path):
    page = (dark_seven_on_white() * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation  # the EXIF orientation tag
    Image.fromarray(page).save(tmp_path / "photo.png", exif=exif)
    with Image.open(tmp_path / "photo.png") as picture:
        expected = np.asarray(ImageOps.exif_transpose(picture))
    np.testing.assert_array_equal(read_image(tmp_path / "photo.png"), expected)
    stored, stored_orientation = read_image_as_stored(tmp_path / "photo.png")
    np.testing.assert_array_equal(stored, page)
    assert stored_orientation == orientation


def test_a_phone_photo_stored_sideways_is_read_upright(tmp_path):
    page = (dark_seven_on_white() * 255).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "turn 90 degrees clockwise to show": the sensor saw the 7 on its side
    Image.fromarray(np.rot90(page)).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    upright = prepare_digit_image(page).astype(int)
    assert np.abs(load_digit_image(tmp_path / "photo.jpg").astype(int) - upright).mean() < 3


@pytest.mark.parametrize("size", [(50_000, 1), (1, 50_000), (7, 300)])
def test_a_strip_too_thin_for_a_digit_is_refused_in_one_line(size, tmp_path):
    width, height = size
    message = rf"the image is {width}x{height} pixels; a digit needs at least 8 pixels a side"
    with pytest.raises(ValueError, match=message):
        prepare_digit_image(np.zeros((height, width)))
    Image.fromarray(np.zeros((height, width), dtype=np.uint8)).save(tmp_path / "strip.png")
    with pytest.raises(ValueError, match=r"strip\.png: " + message):
        load_digit_image(tmp_path / "strip.png")


def test_a_long_strip_is_shrunk_no_thinner_than_a_digit_needs(tmp_path):
    strip = np.full((8, 50_000), 255, dtype=np.uint8)
    Image.fromarray(strip).save(tmp_path / "strip.png")
    assert read_image(tmp_path / "strip.png").shape == (8, 50_000)
    with pytest.raises(ValueError, match="looks blank"):  # not a NumPy reshape error
        prepare_digit_image(strip)


def test_thin_strokes_are_thickened_toward_mnist_and_reach_full_ink():
    thin, bold = Image.new("L", (400, 400), 255), Image.new("L", (400, 400), 255)
    for picture, width in [(thin, 3), (bold, 45)]:
        ImageDraw.Draw(picture).line([(100, 60), (300, 60), (170, 340)], fill=0, width=width)
    thin_digit = prepare_digit_image(np.asarray(thin))
    bold_digit = prepare_digit_image(np.asarray(bold))
    assert thin_digit.max() == 255  # the strongest stroke is full ink, as in MNIST
    # Each about as much ink as MNIST's 7s: a 20-pixel 7 with strokes 2-3 pixels wide.
    assert 0.6 < (thin_digit > 127).sum() / (bold_digit > 127).sum() < 1.0
    width = images._stroke_width(digit_image_steps(np.asarray(thin))["strokes"])
    assert abs(width - images.MNIST_STROKE_WIDTH * images.FINE_SIDE) < 2


# The page or the drawing area before the ink.


def test_homography_sends_the_four_corners_where_asked():
    source = np.array([[0, 0], [0, 99], [49, 99], [49, 0]], dtype=float)
    target = np.array([[10, 20], [5, 180], [120, 170], [100, 15]], dtype=float)
    H = images._homography(source, target)
    mapped = H @ np.vstack([source.T, np.ones(4)])
    np.testing.assert_allclose((mapped[:2] / mapped[2]).T, target, atol=1e-9)


def sheet_on_desk(sheet: np.ndarray, corners: np.ndarray, shape=(480, 640)) -> np.ndarray:
    """The sheet (h, w) seen with its corners (4, 2) (row, column; clockwise from top-left) at
    the given places of a photo of a darker, streaked desk."""
    height, width = sheet.shape
    flat = np.array([[0, 0], [0, width - 1], [height - 1, width - 1], [height - 1, 0]], float)
    H = images._homography(corners, flat)  # photo pixel -> sheet pixel
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]].astype(float)
    y, x, w = H @ np.stack([rows.ravel(), columns.ravel(), np.ones(rows.size)])
    y, x = (y / w).reshape(shape), (x / w).reshape(shape)
    on_sheet = (y >= 0) & (y <= height - 1) & (x >= 0) & (x <= width - 1)
    desk = 0.3 + 0.05 * np.sin(rows / 7.0)
    return np.where(on_sheet, images._bilinear(sheet, y, x), desk)


def test_a_sheet_on_a_desk_is_found_straightened_and_read():
    sheet = on_page(FIVE, shape=(300, 240), at=(90, 60), page=0.9, pen=0.1)
    corners = np.array([[60, 200], [90, 470], [420, 500], [400, 150]], dtype=float)
    photo = to_uint8(with_noise(sheet_on_desk(sheet, corners), levels=3))
    steps = digit_image_steps(photo)
    area = steps["drawing_area"]
    assert 0.8 < area.shape[0] / area.shape[1] / (300 / 240) < 1.25  # a sheet, upright
    assert area.min() > 0.05 and np.median(area) > 0.8  # no desk left in it
    clean = prepare_digit_image(on_page(FIVE, page=1.0, pen=0.0))
    assert correlation_up_to_a_pixel(steps["digit"], clean) > 0.8


def test_a_screenshot_loses_its_bars_and_buttons():
    screen = np.ones((570, 270))
    screen[:20] = 0.1  # status bar, with a light icon
    screen[6:14, 230:260] = 1.0
    screen[20:70] = 0.45  # the app's title bar, with its title
    screen[35:55, 15:120] = 1.0
    screen[510:] = 0.85  # a toolbar with two buttons, each a frame around its label
    for left in (20, 150):
        screen[520:560, left : left + 100] = 0.3
        screen[530:550, left + 15 : left + 85] = 1.0
    screen[200:320, 80:200] = 1.0 - FIVE  # the digit on the white canvas
    steps = digit_image_steps(to_uint8(screen))
    assert steps["drawing_area"].shape[0] < 0.9 * 570  # the bars are gone
    clean = prepare_digit_image(on_page(FIVE, page=1.0, pen=0.0))
    assert correlation_up_to_a_pixel(steps["digit"], clean) > 0.8


def test_mnist_like_inputs_are_their_own_drawing_area():
    digit = prepare_digit_image(on_page(FIVE))
    gray = images._to_grayscale(digit)
    np.testing.assert_array_equal(images.find_drawing_area(gray), gray)
    big = np.asarray(Image.fromarray(digit).resize((280, 280)))
    assert images.find_drawing_area(images._to_grayscale(big)).shape == (280, 280)


def test_a_refused_picture_keeps_the_steps_made_before():
    with pytest.raises(images.DigitNotFoundError, match="looks blank") as refusal:
        digit_image_steps(np.full((60, 80), 0.7))
    assert list(refusal.value.steps) == ["grayscale", "drawing_area", "background_removed"]


def test_a_bar_along_the_edge_is_dropped_when_a_digit_stays():
    screen = np.ones((400, 300))
    screen[:40] = 0.55  # a light title bar across the top: no canvas to find apart from it
    screen[10:30, 20:150] = 1.0  # its title
    screen[150:270, 90:210] = 1.0 - FIVE
    steps = digit_image_steps(to_uint8(screen))
    assert not steps["kept_regions"][:40].any()
    clean = prepare_digit_image(on_page(FIVE, page=1.0, pen=0.0))
    assert correlation_up_to_a_pixel(steps["digit"], clean) > 0.8
    tight = np.ones((120, 60))
    tight[:, 25:35] = 0.0  # a 1 cropped tightly, touching the top and the bottom
    tight[5:8, 2:5] = 0.0  # and a speck: the 1 stays the digit
    assert (prepare_digit_image(tight)[4:24].max(axis=1) > 200).all()  # a bar 20 rows tall


def test_an_unevenly_lit_page_is_not_cut_in_two():
    page = on_page(drawn_five(40), shape=(300, 400), at=(130, 300), page=0.9, pen=0.3)
    page -= np.linspace(0, 0.12, 400)[None, :]  # light from the left
    gray = images._to_grayscale(to_uint8(page))
    assert images.find_drawing_area(gray).shape == gray.shape
