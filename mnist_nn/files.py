"""Writing a file so that it is either complete or absent (atomic_write), removing the
temporary files that a killed process left behind (remove_stale_temporaries), and making a
folder where a file or a broken link may stand in the way (make_folder)."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

# atomic_write's temporary files: "." + the final name + "." + mkstemp's 8 random characters
# + ".tmp", e.g. ".model.npz.k2j4_x9a.tmp".
_TEMPORARY_NAME = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")
STALE_AFTER = 3600.0  # seconds: no write of ours takes an hour between two changes of its file


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """Open a temporary file next to `path` for writing bytes; on success it replaces `path`.

    The data are flushed to disk (fsync) before the rename, so a crash cannot leave an empty file
    under the final name; any exception (a full disk, bad data, Ctrl-C) removes the temporary file
    and leaves `path` as it was. The file gets the permissions of any new file (0o666 minus the
    umask), not mkstemp's private 0o600.
    """
    path = Path(path)
    make_folder(path.parent, f"the folder of {path.name}")
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, 0o666 & ~current_umask())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)


def make_folder(folder: str | os.PathLike, what: str = "the folder") -> Path:
    """Create `folder` and its parents if needed (as mkdir -p). Whatever stands in the way (see
    existing_folder) is named in a NotADirectoryError, not a bare "File exists"."""
    folder = Path(folder)
    existing_folder(folder, what)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def existing_folder(folder: str | os.PathLike, what: str = "the folder") -> Path:
    """The first of `folder` and its parents that is a folder: where mkdir -p would start.

    NotADirectoryError, saying what to do, if something else stands there first: a file, or a
    symbolic link that leads nowhere or round in a loop. Nothing is created.
    """
    folder = Path(folder)
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            return candidate
        if candidate.exists():
            raise NotADirectoryError(
                f"{candidate} is a file, not a folder, so {what} {folder} cannot be made there; "
                "move that file or choose another folder"
            )
        if candidate.is_symlink():
            raise NotADirectoryError(
                f"{candidate} is a symbolic link {_broken_link(candidate)}, so {what} {folder} "
                "cannot be made there; fix or remove the link, or choose another folder"
            )
    return Path.cwd()  # not reached: "." or the root always exists


def _broken_link(link: Path) -> str:
    """How a symbolic link that does not lead to anything fails: "to X, which does not exist"."""
    target = os.readlink(link)
    try:
        link.resolve(strict=True)
    except FileNotFoundError:
        return f"to {target}, which does not exist"
    except (OSError, RuntimeError):  # RuntimeError: pathlib's "Symlink loop" before 3.13
        return f"to {target} that loops back on itself"
    return f"to {target}, which cannot be reached"


def current_umask() -> int:
    """The process's umask. Read from /proc on Linux, which changes nothing; elsewhere it can
    only be read by setting it, so it is set and put back at once (at write time, not import)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o077)  # a brief, safe value if another thread creates a file meanwhile
    os.umask(umask)
    return umask


def remove_stale_temporaries(folder: str | os.PathLike, older_than: float = STALE_AFTER) -> int:
    """Delete atomic_write's temporary files in `folder` not modified for `older_than` seconds:
    what a process killed mid-write (SIGKILL, a power cut) left behind. Returns how many.

    Only names of exactly that pattern are touched; a file that cannot be removed is left.
    """
    removed, limit = 0, time.time() - older_than
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if not _TEMPORARY_NAME.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < limit:
                    os.unlink(entry.path)
                    removed += 1
    return removed
