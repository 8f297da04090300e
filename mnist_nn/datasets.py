"""Get MNIST (or Fashion-MNIST) onto disk and into uint8 arrays: the data folder, mirrors,
checksums, atomic downloads, and files placed there by hand.

A download is kept only after its size and checksum match, so a file in the data folder that
does not parse was damaged later or placed by hand: it is reported, never silently replaced.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import functools
import hashlib
import http.client
import os
import signal
import socket
import ssl
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import requests
import requests.adapters
import urllib3
from tqdm import tqdm

from mnist_nn.files import atomic_write, make_folder, remove_stale_temporaries
from mnist_nn.idx import IMAGES_MAGIC, LABELS_MAGIC, IDXError, idx_header, read_idx

Split = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, its size in bytes and its checksum (hex digest), and the
    SHA-256 of its decompressed content, which also recognises re-compressed copies."""

    name: str
    size: int
    checksum: str
    content_sha256: str | None = None


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
    # Each file: name, size and SHA-256 of the .gz as published, then the SHA-256 of its
    # decompressed content (47,040,016, 60,008, 7,840,016 and 10,008 bytes).
    files={
        "train-images": RemoteFile(
            "train-images-idx3-ubyte.gz",
            9_912_422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        "train-labels": RemoteFile(
            "train-labels-idx1-ubyte.gz",
            28_881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
        "test-images": RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            1_648_877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        "test-labels": RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            4_542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
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
    # The content digests are of the decompressed files, whose MD5s Zalando's also match
    # (Debian's dataset-fashion-mnist holds the same content, compressed again).
    files={
        "train-images": RemoteFile(
            "train-images-idx3-ubyte.gz",
            26_421_880,
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        ),
        "train-labels": RemoteFile(
            "train-labels-idx1-ubyte.gz",
            29_515,
            "25c81989df183df01b3e8a0aad5dffbe",
            "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        ),
        "test-images": RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            4_422_102,
            "bef4ecab320f06d8554ea6380940ec79",
            "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        ),
        "test-labels": RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            5_148,
            "bb300cfdad3c16e7a12a480ee83cd310",
            "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ),
    },
)

DATASETS = {spec.name: spec for spec in (MNIST, FASHION_MNIST)}


class DatasetNotFoundError(FileNotFoundError):
    """The files are not in the data folder and could not be downloaded."""


class ChecksumWarning(UserWarning):
    """A file placed by hand has valid content but not the published bytes."""


def default_data_dir() -> Path:
    """The data folder: $MNIST_NN_DATA, else the clone's data/, else a per-user cache folder."""
    if os.environ.get("MNIST_NN_DATA"):
        return _expand_user(os.environ["MNIST_NN_DATA"], "MNIST_NN_DATA")
    root = Path(__file__).resolve().parent.parent
    if (root / "data" / "README.md").is_file() or (root / "pyproject.toml").is_file():
        return root / "data"  # running from a clone of the repository
    xdg_cache = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec: a relative path is invalid and ignored (it would depend on the folder we
    # were started in).
    if os.path.isabs(xdg_cache):
        cache = Path(xdg_cache) / "mnist_nn"
    else:
        cache = _expand_user("~/.cache/mnist_nn", "the default data folder")
    _announce_once(cache)
    return cache


def _expand_user(path: str | os.PathLike, what: str) -> Path:
    """`path` with ~ or ~user expanded; a home folder that cannot be found (an unknown user, a
    container user without HOME or a passwd entry) is a ValueError saying what to set."""
    try:
        return Path(path).expanduser()
    except RuntimeError:
        user = str(path).split("/", 1)[0].removeprefix("~")
        missing = f"there is no user {user!r}" if user else "HOME is not set (nor a home in passwd)"
        raise ValueError(
            f"{what} is {path}, but {missing}, so the home folder is unknown: set MNIST_NN_DATA "
            "to a folder (or pass data_dir= in Python, --data-dir on the command line)"
        ) from None


@functools.cache
def _announce_once(folder: Path) -> None:
    print(
        f"mnist_nn: data folder is {folder} (to change it: --data-dir on the command line, "
        "data_dir= in Python, or the MNIST_NN_DATA environment variable)",
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
    base = _expand_user(data_dir, "data_dir") if data_dir is not None else default_data_dir()
    return base / spec.folder if spec.folder and base.name != spec.folder else base


def load_mnist(
    data_dir: str | os.PathLike | None = None,
    dataset: str | DatasetSpec = "mnist",
    split: str | None = None,
    *,
    download: bool = True,
    progress: bool = True,
    timeout: float | None = None,
    limits: DownloadLimits | None = None,
) -> tuple[Split, Split] | Split:
    """Load MNIST (or ``dataset="fashion-mnist"``) as uint8 arrays, downloading it if needed.

    Returns ``(X_train, y_train), (X_test, y_test)`` with images (N, 28, 28) and labels (N,),
    or just ``(X, y)`` when ``split`` is "train" or "test" (then only that split's files are
    read or downloaded). Files are looked for in ``dataset_folder(dataset, data_dir)``.
    ``limits`` says how long a mirror may take (see DownloadLimits); ``timeout`` is a shortcut
    for its stall timeout (seconds without a byte).
    """
    spec = _spec(dataset)
    if split not in (None, "train", "test"):
        raise ValueError(f'split must be None, "train" or "test", got {split!r}')
    folder = dataset_folder(spec, data_dir)
    remove_stale_temporaries(folder)  # left by a download that was killed
    splits = ("train", "test") if split is None else (split,)
    keys = [f"{part}-{kind}" for part in splits for kind in ("images", "labels")]
    paths = {key: _find_file(folder, spec.files[key]) for key in keys}
    missing = [key for key, path in paths.items() if path is None]
    if missing and not download:
        raise DatasetNotFoundError(
            f"{spec.files[missing[0]].name} is not in {folder} (and download=False).\n"
            + _how_to_place(spec, folder)
        )
    limits = _limits(limits, timeout)
    down: dict[str, str] = {}  # mirrors found unusable in this run, and why
    with _terminate_like_ctrl_c():
        for key in missing:
            paths[key] = _download(spec, spec.files[key], folder, progress, limits, down)
    if split is not None:
        return _read_split(spec, split, paths)
    return _read_split(spec, "train", paths), _read_split(spec, "test", paths)


def _limits(limits: DownloadLimits | None, timeout: float | None) -> DownloadLimits:
    limits = limits or DownloadLimits()
    if timeout is None:
        return limits
    connect_timeout = min(limits.connect_timeout, timeout)
    return dataclasses.replace(limits, stall_timeout=timeout, connect_timeout=connect_timeout)


class DownloadTerminated(KeyboardInterrupt):
    """SIGTERM arrived during a download; raised like Ctrl-C, so the partial file is removed."""


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """In the block, SIGTERM raises DownloadTerminated (a KeyboardInterrupt) instead of killing
    the process on the spot; once the block has cleaned up, the signal goes to the handler it
    replaced (by default the process then ends, as it would have). Only in the main thread, and
    only where the platform has SIGTERM; a SIGTERM that was ignored stays ignored."""
    previous = _sigterm_handler_to_replace()
    if previous is None:
        yield
        return

    def terminate(signum, frame):
        raise DownloadTerminated("terminated (SIGTERM) during a download")

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except DownloadTerminated:
        signal.signal(signal.SIGTERM, previous)
        signal.raise_signal(signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


def _sigterm_handler_to_replace():
    if not hasattr(signal, "SIGTERM") or threading.current_thread() is not threading.main_thread():
        return None
    previous = signal.getsignal(signal.SIGTERM)
    return None if previous in (None, signal.SIG_IGN) else previous


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
    for kind, path, array in (("images", images_path, X), ("labels", labels_path, y)):
        _warn_if_checksum_differs(spec, spec.files[f"{split}-{kind}"], path, array)
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


def _warn_if_checksum_differs(
    spec: DatasetSpec, remote: RemoteFile, path: Path, array: np.ndarray
) -> None:
    """Silent when `path` holds the published bytes or, compressed or not, their exact content;
    a warning (pointing at the user's call) only when the content differs or cannot be checked."""
    if path.suffix == ".gz" and _digest(path, spec.hash_name) == remote.checksum:
        return
    if remote.content_sha256 is None:
        if path.suffix != ".gz":
            return  # nothing published to compare with; the structure check suffices
        problem = f"differs from the published {remote.name} ({spec.hash_name} mismatch)"
    elif content_sha256(array) == remote.content_sha256:
        return  # the published content, compressed differently (such as Debian's) or not at all
    else:
        problem = f"does not hold the published content of {remote.name} (SHA-256 mismatch)"
    warnings.warn(
        f"{path} {problem}, but it is a valid IDX file, so it is used; results may differ "
        "from those measured on the published files",
        ChecksumWarning,
        stacklevel=_stacklevel_outside_package(),
    )


def content_sha256(array: np.ndarray) -> str:
    """The SHA-256 of the decompressed IDX file that holds `array` (header, then values)."""
    digest = hashlib.sha256(idx_header(array))
    digest.update(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder(">")).data)
    return digest.hexdigest()


def _stacklevel_outside_package() -> int:
    """The stacklevel that makes warnings.warn, called by our caller, point at the first frame
    outside the mnist_nn package: the user's line, whichever entry point they called."""
    package = os.path.dirname(os.path.abspath(__file__))
    frame, level = sys._getframe(1), 1
    while (
        frame is not None and os.path.dirname(os.path.abspath(frame.f_code.co_filename)) == package
    ):
        frame, level = frame.f_back, level + 1
    return level


def _digest(path: Path, hash_name: str) -> str:
    digest = hashlib.new(hash_name)
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class DownloadLimits:
    """How long one mirror may take over one file before the next mirror is tried.

    connect_timeout: seconds to open the connection, so a dead mirror costs little;
    stall_timeout: seconds without a single byte (before the answer or mid-file);
    min_rate: bytes per second on average, required once `grace` seconds have passed, so a
        mirror that trickles bytes is abandoned;
    deadline: seconds for the whole file; None gives grace + 2 * size / min_rate.
    """

    connect_timeout: float = 5.0
    stall_timeout: float = 30.0
    min_rate: float = 20_000.0
    grace: float = 15.0
    deadline: float | None = None

    def deadline_for(self, size: int) -> float:
        if self.deadline is not None:
            return self.deadline
        return self.grace + 2 * size / self.min_rate if self.min_rate > 0 else float("inf")


class _MirrorFailed(Exception):
    """One mirror did not deliver the right file; the next one is tried."""


class _MirrorDown(_MirrorFailed):
    """The mirror cannot be used at all (unreachable, not HTTP, too slow): skipped for the other
    files of this run."""


class _Hiccup(_MirrorFailed):
    """The connection broke mid-file: worth one more try on the same mirror."""


def _download(
    spec: DatasetSpec,
    remote: RemoteFile,
    folder: Path,
    progress: bool,
    limits: DownloadLimits,
    down: dict[str, str],
) -> Path:
    """Fetch ``remote`` from the first mirror that delivers the right bytes. ``down`` maps the
    mirrors found unusable earlier in this run to the reason; they are not tried again."""
    make_folder(folder, "the data folder")
    failures = []
    for base_url in spec.mirrors:
        url = base_url + remote.name
        if base_url in down:
            failures.append(f"{url}  (not tried: {down[base_url]}, for an earlier file)")
            continue
        for attempt in (1, 2):  # one retry: a network hiccup does not make a bad mirror
            try:
                return _fetch(url, remote, folder / remote.name, spec.hash_name, progress, limits)
            except _MirrorFailed as error:
                reason = str(error)
                if isinstance(error, _MirrorDown):
                    down[base_url] = reason
                if attempt == 2 or not isinstance(error, _Hiccup):
                    break
        failures.append(f"{url}  ({reason})")
    tried = "\n".join(f"  {failure}" for failure in failures)
    raise DatasetNotFoundError(
        f"Could not download {remote.name}. Tried:\n{tried}\n" + _how_to_place(spec, folder)
    )


@dataclass
class _Transfer:
    """How far one download got: None before the server answered, else the bytes received."""

    expected: int
    received: int | None = None
    chunked: bool = False  # the answer marks its own end, so a clean end is no cut


# What the network can raise, as opposed to errors writing the file (a full disk), which are
# not the mirror's fault and stop the download.
_NETWORK_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    ssl.SSLError,
    ConnectionError,
    TimeoutError,
)


def _fetch(
    url: str,
    remote: RemoteFile,
    target: Path,
    hash_name: str,
    progress: bool,
    limits: DownloadLimits,
) -> Path:
    """Stream ``url`` into a temporary file next to ``target``; keep it only if verified."""
    transfer = _Transfer(remote.size)
    deadline = limits.deadline_for(remote.size)
    try:
        with _Watchdog(deadline) as watchdog, _watched_session() as session:
            _stream_to_file(session, url, remote, target, hash_name, progress, limits, transfer)
    except (_MirrorFailed, *_NETWORK_ERRORS) as error:
        if watchdog.expired:  # the cut connection is a symptom, the deadline the cause
            raise _past_deadline(transfer, deadline) from None
        if isinstance(error, _MirrorFailed):
            raise
        failure = _proxy_failure(error, url, transfer, limits) or _explain(error, transfer, limits)
        raise failure from None
    return target


def _stream_to_file(session, url, remote, target, hash_name, progress, limits, transfer) -> None:
    # identity: the bytes on disk must be the published .gz, not re-encoded in transit.
    headers = {"Accept-Encoding": "identity"}
    timeout = (limits.connect_timeout, limits.stall_timeout)
    with session.get(url, stream=True, timeout=timeout, headers=headers) as response:
        _check_answer(response, remote.size)
        transfer.chunked = bool(response.raw.chunked)
        transfer.received = 0
        bar = tqdm(
            total=remote.size, unit="B", unit_scale=True, desc=remote.name, disable=not progress
        )
        # Whatever happens (bad bytes, cut connection, Ctrl-C), no partial file stays behind.
        with bar, atomic_write(target) as file:
            digest = _stream(response.raw, file, bar, transfer, hash_name, limits)
            if digest != remote.checksum:
                raise _MirrorFailed(f"wrong bytes: {hash_name} {digest}")


def _past_deadline(transfer: _Transfer, deadline: float) -> _MirrorDown:
    if not transfer.received:  # still in the headers, or they ended and nothing followed
        return _MirrorDown(f"too slow: no file data within the {deadline:g} s deadline")
    return _MirrorDown(
        f"too slow: {transfer.received} of {transfer.expected} bytes, past the {deadline:g} s "
        "deadline for this file"
    )


_watched = threading.local()  # .watchdog: the _Watchdog of the download running in this thread


class _Watchdog:
    """Shuts down a download's connections when its deadline passes. requests' timeouts apply
    to each socket read, so without it a server that sends its headers a byte at a time, each
    within the stall timeout, would hold the download forever."""

    def __init__(self, seconds: float) -> None:
        self.connections: list = []
        self.expired = False
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Watchdog:
        _watched.watchdog = self
        if self._timer.interval < threading.TIMEOUT_MAX:  # not for deadline=inf
            self._timer.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._timer.cancel()
        _watched.watchdog = None

    def _expire(self) -> None:
        self.expired = True
        for connection in self.connections:
            sock = getattr(connection, "sock", None)
            with contextlib.suppress(OSError, AttributeError):
                sock.shutdown(socket.SHUT_RDWR)  # wakes the read blocked on it, unlike close


class _WatchedPool:
    """A connection pool mixin that shows each new connection to this thread's _Watchdog."""

    def _new_conn(self):
        connection = super()._new_conn()
        watchdog = getattr(_watched, "watchdog", None)
        if watchdog is not None:
            watchdog.connections.append(connection)
        return connection


class _WatchedHTTPPool(_WatchedPool, urllib3.HTTPConnectionPool):
    pass


class _WatchedHTTPSPool(_WatchedPool, urllib3.HTTPSConnectionPool):
    pass


class _WatchedAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def _watched_session() -> requests.Session:
    """A requests session whose connections the current _Watchdog can cut (not through a
    proxy, whose connections urllib3 makes elsewhere: there the per-read timeouts remain)."""
    session = requests.Session()
    for prefix in ("http://", "https://"):
        session.mount(prefix, _WatchedAdapter())
    return session


def _check_answer(response: requests.Response, expected: int) -> None:
    """Refuse, before reading the body, an answer that is not the file: an error, a web page,
    or a length of its own (a captive portal's page, an empty reply, a truncated copy)."""
    if response.status_code != 200:
        raise _MirrorFailed(f"HTTP {response.status_code} {response.reason}")
    if "html" in response.headers.get("Content-Type", ""):
        raise _MirrorFailed("answered with an HTML page instead of the file")
    length = response.headers.get("Content-Length", "").strip()
    if length.isdigit() and int(length) != expected:
        raise _MirrorFailed(_not_the_file(int(length), expected, "by its Content-Length"))


def _not_the_file(length: int, expected: int, how: str) -> str:
    return (
        f"its answer is {length:,} bytes long {how}, not the {expected:,} of the file (a login "
        "page, an empty reply or a truncated copy on the mirror?)"
    )


def _stream(raw, file, bar, transfer: _Transfer, hash_name: str, limits: DownloadLimits) -> str:
    """Copy the body into `file` as it arrives, checking the size and the pace; its digest."""
    digest, started = hashlib.new(hash_name), time.monotonic()
    deadline = limits.deadline_for(transfer.expected)
    while chunk := raw.read1(1 << 16, decode_content=False):
        transfer.received += len(chunk)
        if transfer.received > transfer.expected:
            raise _MirrorFailed(f"longer than the expected {transfer.expected} bytes")
        digest.update(chunk)
        file.write(chunk)
        bar.update(len(chunk))
        _check_pace(transfer, time.monotonic() - started, deadline, limits)
    if transfer.received != transfer.expected and transfer.chunked:  # its last chunk came
        raise _MirrorFailed(_not_the_file(transfer.received, transfer.expected, "(chunked)"))
    if transfer.received != transfer.expected:
        raise _Hiccup(
            f"connection cut mid-file, after {transfer.received} of {transfer.expected} bytes"
        )
    return digest.hexdigest()


def _check_pace(
    transfer: _Transfer, elapsed: float, deadline: float, limits: DownloadLimits
) -> None:
    so_far = f"{transfer.received} of {transfer.expected} bytes in {elapsed:.1f} s"
    if elapsed > deadline:
        raise _MirrorDown(f"too slow: {so_far}, past the {deadline:g} s deadline for this file")
    if elapsed > limits.grace and transfer.received < limits.min_rate * elapsed:
        raise _MirrorDown(f"too slow: {so_far}, under {limits.min_rate:g} bytes/s")


def _explain(error: BaseException, transfer: _Transfer, limits: DownloadLimits) -> _MirrorFailed:
    """What really happened, from the chain of exceptions requests and urllib3 wrap."""
    causes = _causes(error)
    for kind, explanation in _EXPLANATIONS:
        cause = next((cause for cause in causes if isinstance(cause, kind)), None)
        if cause is None:
            continue
        if isinstance(explanation, str):
            return _MirrorDown(explanation.format(error=cause, limits=limits))
        return explanation(cause, transfer, limits)
    return _MirrorFailed(f"{type(error).__name__}: {error}")


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and everything it wraps (as __cause__, __context__, .reason or an argument)."""
    found, pending = [], [error]
    while pending:
        current = pending.pop()
        # ``reason`` is not always an exception: the ssl module's is a string
        if not isinstance(current, BaseException) or any(current is seen for seen in found):
            continue
        found.append(current)
        pending += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        pending += [arg for arg in current.args if isinstance(arg, BaseException)]
    return found


def _timed_out(error, transfer: _Transfer, limits: DownloadLimits) -> _MirrorFailed:
    if transfer.received is None:
        return _MirrorDown(f"connected, but no answer within {limits.stall_timeout:g} s")
    return _MirrorDown(
        f"stalled mid-file: no data for {limits.stall_timeout:g} s after "
        f"{transfer.received} of {transfer.expected} bytes"
    )


def _cut(error, transfer: _Transfer, limits: DownloadLimits) -> _MirrorFailed:
    if transfer.received is None:
        return _MirrorDown("the server closed the connection without answering")
    return _Hiccup(
        f"connection cut mid-file, after {transfer.received} of {transfer.expected} bytes"
    )


def _no_connection(error, transfer: _Transfer, limits: DownloadLimits) -> _MirrorFailed:
    """A connection that failed at once, not after a timeout: why, from the socket's error."""
    causes = _causes(error)
    reason = next((cause for cause in causes if getattr(cause, "errno", None)), None)
    if reason is not None and reason.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return _MirrorDown(
            f"{reason.strerror.lower()}: this machine cannot reach it (offline, or a firewall?)"
        )
    return _MirrorDown(f"cannot connect ({getattr(reason, 'strerror', None) or error})")


def _proxy_failure(
    error: BaseException, url: str, transfer: _Transfer, limits: DownloadLimits
) -> _MirrorFailed | None:
    """The proxy from the environment, named, when it is what failed; else None."""
    proxy_errors = (urllib3.exceptions.ProxyError, requests.exceptions.ProxyError)
    if not any(isinstance(cause, proxy_errors) for cause in _causes(error)):
        return None
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    return _MirrorDown(
        f"the proxy {proxy or '(from the environment)'} failed: {_explain(error, transfer, limits)}"
        "; check or unset HTTPS_PROXY, HTTP_PROXY and ALL_PROXY"
    )


# (exception type, explanation), the first match wins, so the most specific come first. A string
# is a mirror that is down, formatted with the exception and the limits.
_EXPLANATIONS = (
    (ssl.SSLCertVerificationError, "TLS certificate not accepted ({error.verify_message})"),
    (ssl.SSLError, "TLS handshake failed ({error.reason})"),
    (socket.gaierror, "host name not found (DNS lookup failed)"),
    (urllib3.exceptions.NameResolutionError, "host name not found (DNS lookup failed)"),
    (ConnectionRefusedError, "connection refused (nothing answers on that port)"),
    # urllib3's NewConnectionError (an error at once) is a kind of ConnectTimeoutError
    (urllib3.exceptions.NewConnectionError, _no_connection),
    (urllib3.exceptions.ConnectTimeoutError, "no connection within {limits.connect_timeout:g} s"),
    (http.client.RemoteDisconnected, _cut),
    (http.client.BadStatusLine, "the server's reply is not HTTP"),
    (urllib3.exceptions.ReadTimeoutError, _timed_out),
    (TimeoutError, _timed_out),
    (http.client.IncompleteRead, _cut),
    # e.g. "got more than 100 headers": an answer, though not one we can read
    (http.client.HTTPException, "the server's reply is not valid HTTP ({error})"),
    (ConnectionError, _cut),
    (urllib3.exceptions.ProtocolError, _cut),
)


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
    _check_n_train(n_train, len(X))
    order = np.random.default_rng(seed).permutation(len(X))
    train, test = order[:n_train], order[n_train:]
    return (X[train], y[train]), (X[test], y[test])


def _check_n_train(n_train: int, n_images: int) -> None:
    """At least one image for training and one for testing."""
    if 0 < n_train < n_images:
        return
    where = "place MNIST's 10,000-image t10k files in the data folder"
    if n_images < 2:
        raise ValueError(
            f"the test file holds {n_images} image(s), too few to split into training and test "
            f"images: {where}"
        )
    raise ValueError(
        f"the test file holds {n_images:,} images, so n_train (training images, the rest are for "
        f"testing) must be between 1 and {n_images - 1:,}, got {n_train:,}: {where} (or, in "
        "Python, pass a smaller n_train)"
    )


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
