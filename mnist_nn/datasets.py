"""Get MNIST (or Fashion-MNIST) onto disk and into uint8 arrays: the data folder, mirrors,
checksums, atomic downloads, and files placed there by hand.

A download is kept only after its size and checksum match, so a file in the data folder that
does not parse was damaged later or placed by hand: it is reported, never silently replaced.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sys
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
from tqdm import tqdm

from mnist_nn.files import atomic_write
from mnist_nn.idx import IMAGES_MAGIC, LABELS_MAGIC, IDXError, read_idx

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, its size in bytes and its checksum (hex digest)."""

    name: str
    size: int
    checksum: str


@dataclass(frozen=True)
class DatasetSpec:
    """Where a data set is published and how to recognise its four files.

    ``files`` has the keys "train-images", "train-labels", "test-images", "test-labels".
    ``folder`` is the subfolder of the data folder it lives in ("" for the data folder itself).
    """

    name: str
    folder: str
    mirrors: tuple[str, ...]  # base URLs ending in "/", tried in order
    hash_name: str  # "sha256" or "md5", as understood by hashlib.new
    files: Mapping[str, RemoteFile]


MNIST = DatasetSpec(
    name="mnist",
    folder="",
    # yann.lecun.com is left out on purpose: it refuses scripts and asks not to be used as a CDN.
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://raw.githubusercontent.com/fgnt/mnist/master/",
    ),
    hash_name="sha256",
    files={
        "train-images": RemoteFile(
            "train-images-idx3-ubyte.gz",
            9_912_422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        ),
        "train-labels": RemoteFile(
            "train-labels-idx1-ubyte.gz",
            28_881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        ),
        "test-images": RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            1_648_877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        ),
        "test-labels": RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            4_542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        ),
    },
)

FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    folder="fashion-mnist",
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    hash_name="md5",  # Zalando publishes MD5s only
    files={
        "train-images": RemoteFile(
            "train-images-idx3-ubyte.gz", 26_421_880, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"
        ),
        "train-labels": RemoteFile(
            "train-labels-idx1-ubyte.gz", 29_515, "25c81989df183df01b3e8a0aad5dffbe"
        ),
        "test-images": RemoteFile(
            "t10k-images-idx3-ubyte.gz", 4_422_102, "bef4ecab320f06d8554ea6380940ec79"
        ),
        "test-labels": RemoteFile(
            "t10k-labels-idx1-ubyte.gz", 5_148, "bb300cfdad3c16e7a12a480ee83cd310"
        ),
    },
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


class DatasetNotFoundError(FileNotFoundError):
    """The files are not in the data folder and could not be downloaded."""


class ChecksumWarning(UserWarning):
    """A file placed by hand has valid content but not the published bytes."""


class _MirrorFailed(Exception):
    """One mirror did not deliver the right file; the next one is tried."""


def default_data_dir() -> Path:
    """The data folder: $MNIST_NN_DATA, else the clone's data/, else a per-user cache folder."""
    if os.environ.get("MNIST_NN_DATA"):
        return Path(os.environ["MNIST_NN_DATA"]).expanduser()
    root = Path(__file__).resolve().parent.parent
    if (root / "data" / "README.md").is_file() or (root / "pyproject.toml").is_file():
        return root / "data"  # running from a clone of the repository
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mnist_nn"
    _announce_once(cache)
    return cache


@functools.cache
def _announce_once(folder: Path) -> None:
    print(
        f"mnist_nn: data folder is {folder} (pass data_dir= or set MNIST_NN_DATA to change it)",
        file=sys.stderr,
    )


def dataset_folder(
    dataset: str | DatasetSpec = "mnist", data_dir: str | os.PathLike | None = None
) -> Path:
    """The folder holding one data set's files, e.g. <data folder>/fashion-mnist.

    A ``data_dir`` that already is that subfolder (such as Debian's
    /usr/share/datasets/fashion-mnist) is used as it is.
    """
    spec = _spec(dataset)
    base = Path(data_dir).expanduser() if data_dir is not None else default_data_dir()
    return base / spec.folder if spec.folder and base.name != spec.folder else base


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    dataset: str | DatasetSpec = "mnist",
    split: str | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    timeout: float = 30.0,
) -> tuple[Split, Split] | Split:
    """Load MNIST (or ``dataset="fashion-mnist"``) as uint8 arrays, downloading it if needed.

    Returns ``(X_train, y_train), (X_test, y_test)`` with images (N, 28, 28) and labels (N,),
    or just ``(X, y)`` when ``split`` is "train" or "test" (then only that split's files are
    read or downloaded). Files are looked for in ``dataset_folder(dataset, data_dir)``.
    """
    spec = _spec(dataset)
    if split not in (None, "train", "test"):
        raise ValueError(f'split must be None, "train" or "test", got {split!r}')
    folder = dataset_folder(spec, data_dir)
    splits = ("train", "test") if split is None else (split,)
    keys = [f"{part}-{kind}" for part in splits for kind in ("images", "labels")]
    paths = {key: _find_file(folder, spec.files[key]) for key in keys}
    for key, path in paths.items():
        if path is None:
            if not download:
                raise DatasetNotFoundError(
                    f"{spec.files[key].name} is not in {folder} (and download=False).\n"
                    + _how_to_place(spec, folder)
                )
            paths[key] = _download(spec, spec.files[key], folder, progress, timeout)

    if split is not None:
        return _read_split(spec, split, paths)
    return _read_split(spec, "train", paths), _read_split(spec, "test", paths)


def _spec(dataset: str | DatasetSpec) -> DatasetSpec:
    if isinstance(dataset, DatasetSpec):
        return dataset
    if dataset not in DATASETS:
        raise ValueError(f"unknown data set {dataset!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[dataset]


def _find_file(folder: Path, remote: RemoteFile) -> Path | None:
    """The file in ``folder`` under any of the names people give it, or None."""
    stem = remote.name.removesuffix(".gz")  # unzip tools drop .gz ...
    dotted = stem.replace("-idx", ".idx")  # ... and some rename -idx3-ubyte to .idx3-ubyte
    for name in (remote.name, stem, dotted, dotted + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def _read_split(spec: DatasetSpec, split: str, paths: Mapping[str, Path]) -> Split:
    """Read and check one split's images and labels: structure first, then the checksum."""
    images_path, labels_path = paths[f"{split}-images"], paths[f"{split}-labels"]
    X = _read_checked(images_path, IMAGES_MAGIC)  # (N, 28, 28)
    y = _read_checked(labels_path, LABELS_MAGIC)  # (N,)
    if X.shape[1:] != (28, 28):
        raise _corrupt(images_path, f"images are {X.shape[1]}x{X.shape[2]}, expected 28x28")
    if len(X) != len(y):
        raise _corrupt(labels_path, f"{len(y)} labels but {images_path.name} has {len(X)} images")
    if y.size and y.max() > 9:
        raise _corrupt(labels_path, f"labels must be 0..9, found {y.max()}")
    for kind, path in (("images", images_path), ("labels", labels_path)):
        _warn_if_checksum_differs(spec, spec.files[f"{split}-{kind}"], path)
    return X, y


def _read_checked(path: Path, magic: int) -> np.ndarray:
    try:
        return read_idx(path, magic=magic)
    except IDXError as error:
        raise _corrupt(path, str(error).removeprefix(f"{path}: ")) from None


def _corrupt(path: Path, problem: str) -> IDXError:
    # Downloads are verified before they are kept, so a bad file here was damaged or placed by
    # hand. It is never deleted automatically: the user decides what happens to their files.
    return IDXError(
        path,
        f"{problem}. Delete this file (the next load downloads a fresh copy) "
        "or replace it with a good copy.",
    )


def _warn_if_checksum_differs(spec: DatasetSpec, remote: RemoteFile, path: Path) -> None:
    if path.suffix != ".gz":
        return  # decompressed files have no published checksum; the structure check suffices
    if _digest(path, spec.hash_name) != remote.checksum:
        warnings.warn(
            f"{path} differs from the published {remote.name} ({spec.hash_name} mismatch), but "
            "its content is a valid IDX file, so it is used (re-compressed copies such as "
            "Debian's differ in bytes only)",
            ChecksumWarning,
            stacklevel=4,  # point at the caller of load_mnist
        )


def _digest(path: Path, hash_name: str) -> str:
    digest = hashlib.new(hash_name)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(
    spec: DatasetSpec, remote: RemoteFile, folder: Path, progress: bool, timeout: float
) -> Path:
    """Fetch ``remote`` from the first mirror that delivers the right bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for base_url in spec.mirrors:
        url = base_url + remote.name
        for _attempt in (1, 2):  # one retry: a network hiccup does not make a bad mirror
            try:
                return _fetch(url, remote, folder / remote.name, spec.hash_name, progress, timeout)
            except _MirrorFailed as error:
                reason = str(error)
                break
            except _NETWORK_HICCUPS as error:
                reason = _describe(error, timeout)
            except requests.RequestException as error:
                reason = f"{type(error).__name__}: {error}"
                break
        failures.append(f"{url}  ({reason})")
    tried = "\n".join(f"  {failure}" for failure in failures)
    raise DatasetNotFoundError(
        f"Could not download {remote.name}. Tried:\n{tried}\n" + _how_to_place(spec, folder)
    )


def _fetch(
    url: str, remote: RemoteFile, target: Path, hash_name: str, progress: bool, timeout: float
) -> Path:
    """Stream ``url`` into a temporary file next to ``target``; keep it only if verified."""
    # identity: the bytes on disk must be the published .gz, not re-encoded in transit.
    headers = {"Accept-Encoding": "identity"}
    with requests.get(url, stream=True, timeout=timeout, headers=headers) as response:
        if response.status_code != 200:
            raise _MirrorFailed(f"HTTP {response.status_code} {response.reason}")
        if "html" in response.headers.get("Content-Type", ""):
            raise _MirrorFailed("answered with an HTML page instead of the file")
        bar = tqdm(
            total=remote.size, unit="B", unit_scale=True, desc=remote.name, disable=not progress
        )
        # Whatever happens (bad bytes, cut connection, Ctrl-C), no partial file stays behind.
        with bar, atomic_write(target) as file:
            digest, size = hashlib.new(hash_name), 0
            for chunk in response.iter_content(chunk_size=1 << 16):
                size += len(chunk)
                if size > remote.size:
                    raise _MirrorFailed(f"longer than the expected {remote.size} bytes")
                digest.update(chunk)
                file.write(chunk)
                bar.update(len(chunk))
            if size != remote.size:
                raise _MirrorFailed(f"{size} bytes, expected {remote.size}")
            if digest.hexdigest() != remote.checksum:
                raise _MirrorFailed(f"wrong bytes: {hash_name} {digest.hexdigest()}")
    return target


_NETWORK_HICCUPS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


def _describe(error: requests.RequestException, timeout: float) -> str:
    if isinstance(error, requests.Timeout):
        return f"no answer within {timeout:g} s"
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "connection cut mid-file"
    return "could not connect"


def _how_to_place(spec: DatasetSpec, folder: Path) -> str:
    names = "\n".join(f"  {remote.name}" for remote in spec.files.values())
    return (
        f"Data folder: {folder}\n"
        f"To place the {spec.name} files by hand (e.g. on an offline machine), download these "
        f"four files elsewhere and copy them into that folder, .gz or decompressed:\n{names}\n"
        "Or point to a folder that holds them: data_dir= in Python, --data-dir on the command "
        "line, or the MNIST_NN_DATA environment variable. With only MNIST's two test files, the "
        'data set "mnist-test-split" splits them into training and test digits; for an offline '
        'demo without MNIST, "synthetic" draws digits in code (load_dataset(name) in Python, '
        "--dataset NAME on the command line, DATASET in the notebook)."
    )


def load_mnist_test_split(
    data_dir: str | os.PathLike | None = None,
    n_train: int = 8_000,
    seed: int = 0,
    **options,
) -> tuple[Split, Split]:
    """Real MNIST digits when only the 10,000-image test file is at hand: its images, in a
    seeded random order, split into ``n_train`` for training and the rest for testing.

    For machines that cannot get the 60,000-image training file. Accuracies measured this way
    come from 8,000 training digits, so they are lower than (and not comparable with)
    published MNIST test accuracies. ``options`` go to load_mnist (e.g. download=False).
    """
    X, y = load_mnist(data_dir, split="test", **options)
    if not 0 < n_train < len(X):
        raise ValueError(f"n_train must be between 1 and {len(X) - 1}, got {n_train}")
    order = np.random.default_rng(seed).permutation(len(X))
    train, test = order[:n_train], order[n_train:]
    return (X[train], y[train]), (X[test], y[test])


DATASET_NAMES = ("mnist", "fashion-mnist", "mnist-test-split", "synthetic")

# Label k of Fashion-MNIST is FASHION_MNIST_CLASSES[k] (Xiao, Rasul and Vollgraf, 2017).
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def class_names(name: str) -> list[str]:
    """What labels 0..9 mean in data set `name`: the digits, or Fashion-MNIST's clothes."""
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; choose one of {list(DATASET_NAMES)}")
    return list(FASHION_MNIST_CLASSES) if name == "fashion-mnist" else [str(d) for d in range(10)]


def load_dataset(
    name: str,
    data_dir: str | os.PathLike | None = None,
    split: str | None = None,
    **options,
) -> tuple[Split, Split] | Split:
    """Load a data set by name, in load_mnist's structure:

    "mnist", "fashion-mnist": the real thing (downloaded if needed);
    "mnist-test-split": only MNIST's 10,000-image test file, split 8,000 train / 2,000 test
        (see load_mnist_test_split);
    "synthetic": digits drawn by code, for offline demos and tests.

    ``options`` go to load_mnist, load_mnist_test_split or load_synthetic.
    """
    if split not in (None, "train", "test"):
        raise ValueError(f'split must be None, "train" or "test", got {split!r}')
    if name in DATASETS:
        return load_mnist(data_dir, dataset=name, split=split, **options)
    if name == "synthetic":
        from mnist_nn.synthetic import load_synthetic

        train, test = load_synthetic(**options)
    elif name == "mnist-test-split":
        train, test = load_mnist_test_split(data_dir, **options)
    else:
        raise ValueError(f"unknown data set {name!r}; choose one of {list(DATASET_NAMES)}")
    return (train, test) if split is None else {"train": train, "test": test}[split]
