"""atomic_write: the file under its final name is complete or untouched, never half written."""

from __future__ import annotations

import pytest

from mnist_nn.files import atomic_write


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
