"""The predict command: its pictures of the steps, made here, read by a small untrained model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mnist_nn.cli import main
from mnist_nn.model import build_mlp

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    return build_mlp((16,), seed=0).save(tmp_path_factory.mktemp("model") / "mlp.npz")


def seven(height: int = 120, width: int = 90) -> np.ndarray:
    """A thick black 7 on a white page, uint8."""
    page = np.full((height, width), 255, dtype=np.uint8)
    page[15:25, 10:60] = 0
    for row in range(25, 100):
        column = 60 - (row - 25) * 30 // 75
        page[row, column - 10 : column] = 0
    return page


def test_debug_dir_keeps_the_steps_of_two_pictures_with_the_same_name(model_file, tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.fromarray(seven()).save(tmp_path / "a" / "digit.png")
    Image.fromarray(seven(200, 200)).save(tmp_path / "b" / "digit.png")
    seen = tmp_path / "seen"
    images = [str(tmp_path / "a" / "digit.png"), str(tmp_path / "b" / "digit.png")]
    assert main(["predict", str(model_file), *images, "--debug-dir", str(seen)]) == 0
    out = capsys.readouterr().out
    pictures = sorted(path.name for path in seen.iterdir())
    assert pictures == ["digit-2-prepared.png", "digit-prepared.png"]
    assert f"{images[0]}: the steps are in {seen / 'digit-prepared.png'}" in out
    assert f"{images[1]}: the steps are in {seen / 'digit-2-prepared.png'}" in out


def test_debug_dir_shows_the_picture_as_stored_and_turned_upright(model_file, tmp_path, capsys):
    exif = Image.Exif()
    exif[0x0112] = 6  # turn 90 degrees clockwise to show
    Image.fromarray(np.rot90(seven())).save(tmp_path / "photo.png", exif=exif)
    Image.fromarray(seven()).save(tmp_path / "upright.png")
    seen = tmp_path / "seen"
    images = [str(tmp_path / "photo.png"), str(tmp_path / "upright.png")]
    assert main(["predict", str(model_file), *images, "--debug-dir", str(seen)]) == 0
    out = capsys.readouterr().out.splitlines()
    verdicts = [line.split(": ", 1)[1] for line in out if "steps are in" not in line]
    assert verdicts[0] == verdicts[1]  # the same digit, once turned upright
    with (
        Image.open(seen / "photo-prepared.png") as sideways,
        Image.open(seen / "upright-prepared.png") as plain,
    ):
        assert sideways.width > plain.width  # one more panel: the picture turned upright


def test_a_dash_is_not_sure_and_a_digit_gets_its_class(model_file, tmp_path, capsys):
    page = np.full((120, 200), 255, dtype=np.uint8)
    page[58:64, 30:170] = 0  # a dash drawn across the page
    Image.fromarray(page).save(tmp_path / "dash.png")
    Image.fromarray(seven()).save(tmp_path / "seven.png")
    images = [str(tmp_path / "dash.png"), str(tmp_path / "seven.png")]
    assert main(["predict", str(model_file), *images]) == 0
    dash, digit = capsys.readouterr().out.splitlines()
    assert dash.startswith(
        f"{images[0]}: not sure: this does not look like a handwritten digit "
        "(it is a flat line, like a dash); best guess "
    )
    assert "not sure" not in digit and digit.count("%") == 3


def test_debug_dir_shows_the_steps_of_a_refused_picture(model_file, tmp_path, capsys):
    Image.fromarray(np.full((60, 80), 200, dtype=np.uint8)).save(tmp_path / "blank.png")
    seen = tmp_path / "seen"
    code = main(["predict", str(model_file), str(tmp_path / "blank.png"), "--debug-dir", str(seen)])
    captured = capsys.readouterr()
    assert code == 1 and "looks blank" in captured.err
    assert (seen / "blank-prepared.png").is_file()
    assert f"the steps are in {seen / 'blank-prepared.png'}" in captured.out
