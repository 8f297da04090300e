"""load_mnist against a local HTTP server serving tiny IDX files: mirrors, checksums, atomic
downloads, the cache, hand-placed files and the offline error. Never touches the network."""

from __future__ import annotations

import gzip
import hashlib
import re
import socket
import threading
import time
import warnings
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from mnist_nn import datasets
from mnist_nn.datasets import (
    ChecksumWarning,
    DatasetNotFoundError,
    DatasetSpec,
    DownloadLimits,
    RemoteFile,
    class_names,
    content_sha256,
    dataset_folder,
    default_data_dir,
    load_dataset,
    load_mnist,
    load_mnist_test_split,
)
from mnist_nn.idx import IDXError, write_idx

KEYS = ("train-images", "train-labels", "test-images", "test-labels")
NAMES = [datasets.MNIST.files[key].name for key in KEYS]


def tiny_arrays() -> dict[str, np.ndarray]:
    """A 12-image train split and an 8-image test split, labels covering 0..9."""
    rng = np.random.default_rng(0)
    return {
        "train-images": rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8),
        "train-labels": (np.arange(12) % 10).astype(np.uint8),
        "test-images": rng.integers(0, 256, size=(8, 28, 28), dtype=np.uint8),
        "test-labels": np.array([9, 8, 7, 6, 5, 4, 3, 2], dtype=np.uint8),
    }


@pytest.fixture(scope="module")
def published(tmp_path_factory) -> dict[str, bytes]:
    """The published .gz bytes of the tiny data set, by file name."""
    folder = tmp_path_factory.mktemp("published")
    arrays = tiny_arrays()
    return {
        name: write_idx(folder / name, arrays[key]).read_bytes()
        for key, name in zip(KEYS, NAMES, strict=True)
    }


class MirrorHandler(BaseHTTPRequestHandler):
    """/<behaviour>/<file name>: good, missing (404), error (500), html, wrong or cut bytes."""

    def do_GET(self):
        behaviour, _, name = self.path.strip("/").partition("/")
        self.server.requests.append(self.path)
        body = self.server.files.get(name)
        if behaviour == "missing" or body is None:
            self.send_error(404)
        elif behaviour == "error":
            self.send_error(500)
        elif behaviour == "html":
            self.reply(b"<html><body>Please log in</body></html>", "text/html; charset=utf-8")
        elif behaviour == "wrong":
            self.reply(body[:-1] + bytes([body[-1] ^ 0xFF]))  # right size, one byte off
        elif behaviour == "cut":
            self.reply(body[: len(body) // 2], length=len(body))  # promise all, send half
            self.close_connection = True
        elif behaviour == "trickle":  # the body at 500 bytes/s, 10 bytes at a time
            self.reply(body[:10], length=len(body))
            self.trickle(body[10:], step=10)
        elif behaviour in ODD_ANSWERS:
            ODD_ANSWERS[behaviour](self, body)
        elif behaviour == "slow-headers":  # a header line that grows a byte every 50 ms
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            self.trickle(b"x" * 200, step=1, pause=0.05)
        else:
            self.reply(body)

    def trickle(self, data: bytes, step: int, pause: float = 0.02) -> None:
        """Send `data` a few bytes at a time, until the client hangs up or the test ends."""
        self.close_connection = True
        for start in range(0, len(data), step):
            if self.server.stopping.wait(pause):
                return
            try:
                self.wfile.write(data[start : start + step])
                self.wfile.flush()
            except OSError:  # the client gave up, as it should
                return

    def reply(self, body: bytes, content_type="application/gzip", length=None):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length or len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass  # keep pytest output clean


def short_chunked(handler, body: bytes) -> None:
    """A complete chunked answer, shorter than the file."""
    handler.send_response(200)
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.write(b"a\r\n" + body[:10] + b"\r\n0\r\n\r\n")


def many_headers(handler, body: bytes) -> None:
    """More header lines than http.client reads."""
    handler.send_response(200)
    for index in range(500):
        handler.send_header(f"X-Header-{index}", "x")
    handler.end_headers()


ODD_ANSWERS = {
    "short": lambda handler, body: handler.reply(body[:10]),  # complete, e.g. a login page
    "empty": lambda handler, body: handler.reply(b""),
    "short-chunked": short_chunked,
    "many-headers": many_headers,
}


@pytest.fixture
def server(published):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), MirrorHandler)
    httpd.daemon_threads = True
    httpd.files, httpd.requests, httpd.stopping = published, [], threading.Event()
    httpd.url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()


def refused_url() -> str:
    """A local port that nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def tiny_spec(published, mirrors, folder="") -> DatasetSpec:
    files = {
        key: RemoteFile(
            name,
            len(published[name]),
            hashlib.sha256(published[name]).hexdigest(),
            hashlib.sha256(gzip.decompress(published[name])).hexdigest(),
        )
        for key, name in zip(KEYS, NAMES, strict=True)
    }
    return DatasetSpec("tiny", folder, tuple(mirrors), "sha256", files)


def assert_loaded_tiny(loaded):
    arrays = tiny_arrays()
    (X_train, y_train), (X_test, y_test) = loaded
    for key, array in zip(KEYS, (X_train, y_train, X_test, y_test), strict=True):
        assert array.dtype == np.uint8
        np.testing.assert_array_equal(array, arrays[key])


def test_clean_download_keeps_exactly_the_four_files(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "good/"])
    assert_loaded_tiny(load_mnist(tmp_path / "data", dataset=spec, progress=False))
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == sorted(NAMES)


@pytest.mark.parametrize("first", ["missing", "error", "html", "refused"])
def test_a_failing_first_mirror_is_skipped(tmp_path, server, published, first):
    first_url = refused_url() if first == "refused" else server.url + first + "/"
    spec = tiny_spec(published, [first_url, server.url + "good/"])
    assert_loaded_tiny(load_mnist(tmp_path, dataset=spec, progress=False))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES)


@pytest.mark.parametrize("behaviour, reason", [("wrong", "wrong bytes"), ("cut", "cut")])
def test_bad_bytes_leave_nothing_behind(tmp_path, server, published, behaviour, reason):
    spec = tiny_spec(published, [server.url + behaviour + "/"])
    with pytest.raises(DatasetNotFoundError, match=reason):
        load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_cut_connection_is_retried_once_then_the_next_mirror_used(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "cut/", server.url + "good/"])
    load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    label_requests = [r for r in server.requests if r.endswith("t10k-labels-idx1-ubyte.gz")]
    assert [r.split("/")[1] for r in label_requests] == ["cut", "cut", "good"]


def test_interrupted_download_leaves_nothing_behind(tmp_path, server, published, monkeypatch):
    class InterruptedBar:
        def __init__(self, *args, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc_info):
            return False

        def update(self, n):
            raise KeyboardInterrupt  # the user presses Ctrl-C mid-download

    monkeypatch.setattr(datasets, "tqdm", InterruptedBar)
    spec = tiny_spec(published, [server.url + "good/"])
    with pytest.raises(KeyboardInterrupt):
        load_mnist(tmp_path, dataset=spec, progress=False)
    assert list(tmp_path.iterdir()) == []


# Tight limits, so that each slow server is given up within about a second.
QUICK_LIMITS = DownloadLimits(connect_timeout=1.0, stall_timeout=2.0, min_rate=5_000, grace=0.3)


def test_a_trickling_mirror_is_abandoned_and_skipped_for_the_other_files(
    tmp_path, server, published
):
    spec = tiny_spec(published, [server.url + "trickle/", server.url + "good/"])
    started = time.monotonic()
    X, _ = load_mnist(tmp_path, dataset=spec, split="test", progress=False, limits=QUICK_LIMITS)
    assert time.monotonic() - started < 3 and X.shape == (8, 28, 28)
    # The images found it too slow; the labels never asked it again.
    assert [r.split("/")[1] for r in server.requests] == ["trickle", "good", "good"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES[2:])


def test_a_trickling_mirror_is_reported_honestly_and_leaves_nothing(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "trickle/"])
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(tmp_path, dataset=spec, split="test", progress=False, limits=QUICK_LIMITS)
    assert re.search(r"too slow: \d+ of \d+ bytes in 0\.\d s, under 5000 bytes/s", str(error.value))
    assert list(tmp_path.iterdir()) == []


def test_the_deadline_for_a_file_holds_even_at_a_steady_rate(tmp_path, server, published):
    limits = DownloadLimits(connect_timeout=1.0, stall_timeout=2.0, min_rate=0, deadline=0.5)
    spec = tiny_spec(published, [server.url + "trickle/"])
    started = time.monotonic()
    with pytest.raises(DatasetNotFoundError, match=r"past the 0.5 s deadline for this file"):
        load_mnist(tmp_path, dataset=spec, split="test", progress=False, limits=limits)
    assert time.monotonic() - started < 2
    assert list(tmp_path.iterdir()) == []


def test_headers_trickled_forever_are_cut_at_the_deadline(tmp_path, server, published):
    # Each byte arrives well within the stall timeout, so only an overall deadline ends this.
    limits = DownloadLimits(connect_timeout=1.0, stall_timeout=2.0, min_rate=5_000, deadline=1.0)
    spec = tiny_spec(published, [server.url + "slow-headers/", server.url + "good/"])
    started = time.monotonic()
    X, _ = load_mnist(tmp_path, dataset=spec, split="test", progress=False, limits=limits)
    assert time.monotonic() - started < 3 and X.shape == (8, 28, 28)
    assert [r.split("/")[1] for r in server.requests] == ["slow-headers", "good", "good"]
    only_slow = tiny_spec(published, [server.url + "slow-headers/"])
    with pytest.raises(DatasetNotFoundError, match="no file data within the 1 s deadline"):
        load_mnist(tmp_path / "other", dataset=only_slow, progress=False, limits=limits)
    assert list((tmp_path / "other").iterdir()) == []


def test_second_load_reads_the_cache_without_network(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "good/"])
    load_mnist(tmp_path, dataset=spec, progress=False)
    server.shutdown()
    server.server_close()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # verified downloads raise no checksum warning
        assert_loaded_tiny(load_mnist(tmp_path, dataset=spec, progress=False))


def test_one_split_reads_and_downloads_only_its_two_files(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "good/"])
    X, y = load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    assert X.shape == (8, 28, 28) and y.shape == (8,)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(NAMES[2:])
    assert all("t10k" in request for request in server.requests)


def test_offline_error_says_what_was_tried_and_how_to_fix_it(tmp_path, published):
    mirrors = [refused_url() + "first/", refused_url() + "second/"]
    spec = tiny_spec(published, mirrors)
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(tmp_path / "data", dataset=spec, progress=False, timeout=2)
    message = str(error.value)
    for text in [*(url + NAMES[0] for url in mirrors), str(tmp_path / "data"), *NAMES, "copy"]:
        assert text in message


def test_download_false_names_the_missing_files(tmp_path, published):
    spec = tiny_spec(published, ["http://127.0.0.1:9/"])
    with pytest.raises(DatasetNotFoundError, match="download=False") as error:
        load_mnist(tmp_path, dataset=spec, download=False)
    assert all(name in str(error.value) for name in NAMES)


def place(folder: Path, names: list[str], arrays=None) -> None:
    arrays = arrays or tiny_arrays()
    for key, name in zip(KEYS, names, strict=True):
        write_idx(folder / name, arrays[key])


UNZIPPED = [name.removesuffix(".gz") for name in NAMES]  # train-images-idx3-ubyte
DOTTED = [name.replace("-idx", ".idx") for name in UNZIPPED]  # train-images.idx3-ubyte


@pytest.mark.parametrize("names", [UNZIPPED, DOTTED], ids=["unzipped", "dotted"])
def test_hand_placed_decompressed_files_are_accepted(tmp_path, published, names):
    place(tmp_path, names)
    spec = tiny_spec(published, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_loaded_tiny(load_mnist(tmp_path, dataset=spec, download=False))


def test_recompressed_copy_loads_silently_and_exactly_verified(tmp_path, published):
    for name in NAMES:  # same content, different gzip bytes (like Debian's copies)
        (tmp_path / name).write_bytes(gzip.compress(gzip.decompress(published[name]), 1))
        assert (tmp_path / name).read_bytes() != published[name]
    spec = tiny_spec(published, [])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert_loaded_tiny(load_mnist(tmp_path, dataset=spec, download=False))


@pytest.mark.parametrize("names", [NAMES, UNZIPPED], ids=["gz", "unzipped"])
def test_different_content_warns_at_the_users_call(tmp_path, published, names):
    arrays = tiny_arrays()
    arrays["test-images"][0, 0, 0] ^= 1  # one pixel differs from the published content
    place(tmp_path, names, arrays)
    spec = tiny_spec(published, [])
    with pytest.warns(ChecksumWarning, match="does not hold the published content") as record:
        load_mnist(tmp_path, dataset=spec, split="test", download=False)
    (warning,) = record
    assert names[2] in str(warning.message) and warning.filename == __file__


def test_content_sha256_is_that_of_the_decompressed_file(tmp_path):
    A = np.arange(-6, 6, dtype=np.int16).reshape(3, 4)  # not uint8: byte order matters
    path = write_idx(tmp_path / "a.gz", A)
    assert content_sha256(A) == hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()


PUBLISHED_COPIES = [
    ("mnist", "/work/shared/data/mnist"),  # the test files as .gz, the train files unzipped
    ("fashion-mnist", "/usr/share/datasets/fashion-mnist"),  # Debian's: re-compressed
]


@pytest.mark.parametrize("name, folder", PUBLISHED_COPIES, ids=["mnist", "fashion-debian"])
def test_real_copies_match_the_published_content_digests(name, folder):
    spec = datasets.DATASETS[name]
    if not all(datasets._find_file(Path(folder), remote) for remote in spec.files.values()):
        pytest.skip(f"no copy of {name} in {folder}")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (X_train, _), (X_test, _) = load_mnist(folder, dataset=name, download=False)
    assert X_train.shape == (60_000, 28, 28) and X_test.shape == (10_000, 28, 28)


def test_corrupt_cached_file_names_the_file_and_the_fix(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "good/"])
    load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    damaged = tmp_path / NAMES[2]
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(IDXError, match="Delete this file") as error:
        load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    assert str(damaged) in str(error.value)
    assert damaged.exists()  # never deleted behind the user's back


def test_images_and_labels_that_do_not_belong_together(tmp_path, published):
    arrays = tiny_arrays()
    arrays["test-labels"] = arrays["test-labels"][:5]
    place(tmp_path, NAMES, arrays)
    with pytest.raises(IDXError, match="5 labels but t10k-images"):
        load_mnist(tmp_path, dataset=tiny_spec(published, []), split="test", download=False)


def test_labels_outside_0_to_9_are_rejected(tmp_path, published):
    arrays = tiny_arrays()
    arrays["test-labels"][0] = 10
    place(tmp_path, NAMES, arrays)
    with pytest.raises(IDXError, match="0..9"):
        load_mnist(tmp_path, dataset=tiny_spec(published, []), split="test", download=False)


def test_images_and_labels_files_swapped(tmp_path, published):
    place(tmp_path, [NAMES[1], NAMES[0], NAMES[3], NAMES[2]])
    with pytest.raises(IDXError, match="expected 2051"):
        load_mnist(tmp_path, dataset=tiny_spec(published, []), split="train", download=False)


def test_data_folder_argument_beats_environment_beats_clone(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_NN_DATA", raising=False)
    assert default_data_dir() == Path(datasets.__file__).resolve().parents[1] / "data"
    monkeypatch.setenv("MNIST_NN_DATA", str(tmp_path / "env"))
    assert default_data_dir() == tmp_path / "env"
    assert dataset_folder("mnist", tmp_path / "arg") == tmp_path / "arg"


def test_installed_package_uses_the_user_cache_and_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_NN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    site = tmp_path / "site-packages" / "mnist_nn"
    monkeypatch.setattr(datasets, "__file__", str(site / "datasets.py"))
    datasets._announce_once.cache_clear()
    assert default_data_dir() == tmp_path / "cache" / "mnist_nn"
    default_data_dir()
    note = capsys.readouterr().err
    assert note.count(str(tmp_path / "cache" / "mnist_nn")) == 1
    assert "--data-dir" in note and "MNIST_NN_DATA" in note  # how to change it, anywhere


def test_a_relative_xdg_cache_home_is_ignored(tmp_path, monkeypatch):
    monkeypatch.delenv("MNIST_NN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # invalid per the XDG spec
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(datasets, "__file__", str(tmp_path / "site-packages" / "datasets.py"))
    assert default_data_dir() == tmp_path / "home" / ".cache" / "mnist_nn"


@pytest.mark.filterwarnings("ignore::mnist_nn.datasets.ChecksumWarning")  # tiny, not MNIST
def test_a_test_file_too_small_to_split_says_how_many_images_it_holds(tmp_path):
    arrays = tiny_arrays()
    write_idx(tmp_path / UNZIPPED[2], arrays["test-images"][:1])
    write_idx(tmp_path / UNZIPPED[3], arrays["test-labels"][:1])
    with pytest.raises(ValueError, match="holds 1 image.s., too few to split .* t10k files"):
        load_mnist_test_split(tmp_path, download=False)


def test_fashion_lives_in_a_subfolder_unless_pointed_at_it(tmp_path):
    assert dataset_folder("fashion-mnist", tmp_path) == tmp_path / "fashion-mnist"
    debian_like = tmp_path / "datasets" / "fashion-mnist"
    assert dataset_folder("fashion-mnist", debian_like) == debian_like


@pytest.mark.filterwarnings("ignore::mnist_nn.datasets.ChecksumWarning")  # tiny, not MNIST
def test_load_dataset_dispatches_by_name(tmp_path):
    place(tmp_path / "fashion-mnist", UNZIPPED)
    assert_loaded_tiny(load_dataset("fashion-mnist", tmp_path, download=False))
    X, y = load_dataset("synthetic", split="test", n_train=20, n_test=10)
    assert X.shape == (10, 28, 28) and X.dtype == np.uint8 and y.shape == (10,)
    with pytest.raises(ValueError, match="synthetic"):
        load_dataset("cifar10")


def test_bad_arguments_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, split="validation")
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_mnist(tmp_path, dataset="kmnist")


@pytest.mark.filterwarnings("ignore::mnist_nn.datasets.ChecksumWarning")  # tiny, not MNIST
def test_mnist_test_split_uses_only_the_test_file(tmp_path):
    arrays = tiny_arrays()
    # The two test files only (decompressed: no published checksum to compare), as on a machine
    # that cannot get the training files.
    for key, name in zip(KEYS[2:], UNZIPPED[2:], strict=True):
        write_idx(tmp_path / name, arrays[key])
    (X_train, y_train), (X_test, y_test) = load_mnist_test_split(tmp_path, n_train=5, seed=3)
    assert X_train.shape == (5, 28, 28) and X_test.shape == (3, 28, 28)
    # Together the two parts are exactly the test file's images, each once, labels kept.
    X_all, y_all = np.concatenate([X_train, X_test]), np.concatenate([y_train, y_test])
    order = [
        int(np.flatnonzero((arrays["test-images"] == image).all(axis=(1, 2)))[0]) for image in X_all
    ]
    assert sorted(order) == list(range(8))
    np.testing.assert_array_equal(y_all, arrays["test-labels"][order])
    again = load_dataset("mnist-test-split", tmp_path, split="train", n_train=5, seed=3)
    np.testing.assert_array_equal(again[0], X_train)
    other_seed = load_mnist_test_split(tmp_path, n_train=5, seed=4)[0][0]
    assert not np.array_equal(other_seed, X_train)
    with pytest.raises(ValueError, match=r"holds 8 images, so n_train .* between 1 and 7, got 8"):
        load_mnist_test_split(tmp_path, n_train=8)
    with pytest.raises(DatasetNotFoundError):
        load_mnist_test_split(tmp_path / "empty", download=False)


def test_class_names_say_what_the_labels_stand_for():
    assert class_names("mnist") == class_names("mnist-test-split") == list("0123456789")
    fashion = class_names("fashion-mnist")
    assert len(fashion) == len(set(fashion)) == 10
    assert (fashion[0], fashion[9]) == ("T-shirt/top", "Ankle boot")
    with pytest.raises(ValueError, match="unknown data set 'kmnist'"):
        class_names("kmnist")


def test_a_rejected_tls_certificate_is_named_not_a_crash():
    # The ssl module's errors carry a *string* in .reason; requests wraps them as below.
    import ssl

    import requests
    import urllib3

    cert_error = ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED] failed")
    cert_error.reason = "CERTIFICATE_VERIFY_FAILED"
    cert_error.verify_message = "self-signed certificate"
    url = "https://127.0.0.1:1/t10k-labels-idx1-ubyte.gz"
    wrapped = urllib3.exceptions.MaxRetryError(
        None, url, reason=urllib3.exceptions.SSLError(cert_error)
    )
    error = requests.exceptions.SSLError(wrapped)
    explained = datasets._explain(error, datasets._Transfer(10), DownloadLimits())
    assert str(explained) == "TLS certificate not accepted (self-signed certificate)"


def test_a_data_folder_that_is_a_dangling_link_is_named(tmp_path, published):
    link = tmp_path / "data"
    link.symlink_to(tmp_path / "unmounted")  # e.g. a disk that is not mounted
    spec = tiny_spec(published, [refused_url()])
    with pytest.raises(NotADirectoryError, match="unmounted, which does not exist") as error:
        load_mnist(link, dataset=spec, progress=False)
    assert "the data folder" in str(error.value) and "Errno" not in str(error.value)


@pytest.mark.parametrize(
    "behaviour, length, how",
    [("short", 10, "by its Content-Length"), ("empty", 0, "by its Content-Length"),
     ("short-chunked", 10, "(chunked)")],
)  # fmt: skip
def test_a_short_but_complete_answer_is_not_the_file_and_not_fetched_twice(
    tmp_path, server, published, behaviour, length, how
):
    spec = tiny_spec(published, [server.url + behaviour + "/"])
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    assert f"its answer is {length} bytes long {how}, not the" in str(error.value)
    assert "cut" not in str(error.value)
    assert len(server.requests) == 1  # no retry
    assert list(tmp_path.iterdir()) == []


def test_a_reply_with_hundreds_of_headers_is_named(tmp_path, server, published):
    spec = tiny_spec(published, [server.url + "many-headers/"])
    with pytest.raises(DatasetNotFoundError, match="not valid HTTP .got more than 100 headers"):
        load_mnist(tmp_path, dataset=spec, split="test", progress=False)


def test_no_route_to_host_is_named_not_taken_for_a_timeout(tmp_path, published, monkeypatch):
    import errno

    import urllib3.util.connection

    def unreachable(*args, **kwargs):
        raise OSError(errno.EHOSTUNREACH, "No route to host")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", unreachable)
    spec = tiny_spec(published, ["http://192.0.2.1/"])  # TEST-NET-1: never routed
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    assert "no route to host: this machine cannot reach it" in str(error.value)
    assert "within" not in str(error.value)


def test_a_dead_proxy_is_named(tmp_path, server, published, monkeypatch):
    dead_proxy = refused_url().rstrip("/")
    for name in ("no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", dead_proxy)
    spec = tiny_spec(published, [server.url + "good/"])
    with pytest.raises(DatasetNotFoundError) as error:
        load_mnist(tmp_path, dataset=spec, split="test", progress=False)
    assert f"the proxy {dead_proxy} failed: connection refused" in str(error.value)
    assert "HTTP_PROXY" in str(error.value) and server.requests == []


def test_an_unknown_user_in_mnist_nn_data_says_what_to_set(monkeypatch):
    monkeypatch.setenv("MNIST_NN_DATA", "~nosuchuser/x")
    with pytest.raises(ValueError, match="there is no user 'nosuchuser'.*set MNIST_NN_DATA"):
        dataset_folder("mnist")


def test_a_user_without_a_home_folder_is_told_what_to_set(tmp_path, monkeypatch):
    import pwd

    def no_entry(uid):
        raise KeyError(f"getpwuid(): uid not found: {uid}")  # a container user

    for name in ("MNIST_NN_DATA", "XDG_CACHE_HOME", "HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    monkeypatch.setattr(datasets, "__file__", str(tmp_path / "site-packages" / "datasets.py"))
    with pytest.raises(ValueError, match="HOME is not set.*set MNIST_NN_DATA to a folder"):
        default_data_dir()
