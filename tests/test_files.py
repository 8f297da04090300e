"""atomic_write: the file under its final name is complete or untouched, never half written, with
the umask's permissions; remove_stale_temporaries: what a killed write left behind."""

from __future__ import annotations

import os
import stat
import time

import pytest

from mnist_nn.files import atomic_write, current_umask, make_folder, remove_stale_temporaries


def test_writes_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "new" / "folder" / "data.bin"  # missing folders are created
    with atomic_write(path) as file:
        file.write(b"hello ")
        file.write(b"world")
        assert not path.exists()  # nothing under the final name until the end
        (temporary,) = path.parent.iterdir()
        assert temporary.name.startswith(".data.bin.")  # next to it: the rename stays atomic
    assert path.read_bytes() == b"hello world"
    assert list(path.parent.iterdir()) == [path]


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with atomic_write(path) as file:
        file.write(b"new")
    assert path.read_bytes() == b"new" and list(tmp_path.iterdir()) == [path]


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_an_error_keeps_the_old_file_and_removes_the_temporary_one(tmp_path, error):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old")
    with pytest.raises(type(error)):
        with atomic_write(path) as file:
            file.write(b"half of the new")
            raise error
    assert path.read_bytes() == b"old" and list(tmp_path.iterdir()) == [path]


def test_an_error_before_the_first_write_creates_nothing(tmp_path):
    path = tmp_path / "data.bin"
    with pytest.raises(ValueError, match="bad data"):
        with atomic_write(path):
            raise ValueError("bad data")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_the_file_honours_the_umask(tmp_path, umask):
    previous = os.umask(umask)
    try:
        assert current_umask() == umask
        with atomic_write(tmp_path / "data.bin") as file:
            file.write(b"x")
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "data.bin").stat().st_mode) == 0o666 & ~umask


def test_stale_temporaries_of_ours_are_removed_and_nothing_else(tmp_path):
    hour_ago = time.time() - 2 * 3600
    names = {
        ".model.npz.k2j4_x9a.tmp": True,  # ours, old: removed
        ".t10k-images-idx3-ubyte.gz.abcdefgh.tmp": True,
        ".model.npz.fresh123.tmp": False,  # ours but recent: a write may be under way
        "model.npz.k2j4_x9a.tmp": False,  # not hidden: not ours
        ".model.npz.toolong99.tmp.bak": False,
        "notes.tmp": False,
        "model.npz": False,
    }
    for name in names:
        (tmp_path / name).write_bytes(b"partial")
        if name != ".model.npz.fresh123.tmp":
            os.utime(tmp_path / name, (hour_ago, hour_ago))
    (tmp_path / ".folder.abcdefgh.tmp").mkdir()  # a folder is never removed
    assert remove_stale_temporaries(tmp_path) == 2
    left = {path.name for path in tmp_path.iterdir()}
    assert left == {name for name, stale in names.items() if not stale} | {".folder.abcdefgh.tmp"}
    assert remove_stale_temporaries(tmp_path / "missing") == 0  # no folder: nothing to do


def test_a_write_under_way_is_not_stale(tmp_path):
    with atomic_write(tmp_path / "data.bin") as file:
        file.write(b"half")
        assert remove_stale_temporaries(tmp_path) == 0
    assert (tmp_path / "data.bin").read_bytes() == b"half"


def test_make_folder_names_a_file_standing_in_the_way(tmp_path):
    assert make_folder(tmp_path / "a" / "b").is_dir()
    assert make_folder(tmp_path / "a" / "b").is_dir()  # already there: fine
    (tmp_path / "file").write_text("x")
    for folder in (tmp_path / "file", tmp_path / "file" / "sub"):
        with pytest.raises(NotADirectoryError, match="file is a file, not a folder"):
            make_folder(folder, "the data folder")


@pytest.mark.parametrize(
    "link_to, message",
    [("nowhere", "nowhere, which does not exist"), ("loop", "loops back on itself")],
)
def test_make_folder_names_a_broken_symbolic_link_in_the_way(tmp_path, link_to, message):
    link = tmp_path / "link"
    link.symlink_to(tmp_path / link_to if link_to == "nowhere" else link)
    for folder in (link, link / "sub"):
        with pytest.raises(NotADirectoryError, match=message) as error:
            make_folder(folder, "the data folder")
        assert f"the data folder {folder} cannot be made" in str(error.value)
        assert "fix or remove the link" in str(error.value)


def test_atomic_write_names_a_file_in_the_way_of_its_folder(tmp_path):
    (tmp_path / "runs").write_text("not a folder")
    with pytest.raises(NotADirectoryError, match="runs is a file, not a folder"):
        with atomic_write(tmp_path / "runs" / "mlp.npz") as file:
            file.write(b"x")
    assert (tmp_path / "runs").read_text() == "not a folder"
