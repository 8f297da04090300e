"""The command line, end to end on small offline IDX files: download, train, evaluate, predict and
bench, --help, and one-line errors with a non-zero exit code."""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_nn import cli, load_model
from mnist_nn.conv import Conv2D
from mnist_nn.datasets import MNIST
from mnist_nn.idx import write_idx
from mnist_nn.model import build_mlp
from mnist_nn.synthetic import load_synthetic

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "mnist_nn" / "data"  # the example pictures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A data folder holding a small MNIST look-alike in the four IDX files (checksums differ)."""
    folder = tmp_path_factory.mktemp("data")
    (X_train, y_train), (X_test, y_test) = load_synthetic(n_train=600, n_test=200, seed=0)
    arrays = {
        "train-images": X_train,
        "train-labels": y_train,
        "test-images": X_test,
        "test-labels": y_test,
    }
    for key, array in arrays.items():
        write_idx(folder / MNIST.files[key].name.removesuffix(".gz"), array.astype(np.uint8))
    return folder


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory) -> Path:
    """A model trained by the train command, shared by the evaluate and predict tests."""
    out = tmp_path_factory.mktemp("runs") / "mlp.npz"
    code = cli.main(
        [
            "train",
            "--data-dir",
            str(data_dir),
            "--hidden-sizes",
            "32",
            "--n-epochs",
            "3",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


@pytest.fixture(scope="module")
def trained_cnn(data_dir, tmp_path_factory) -> Path:
    """A small CNN trained by `train --model cnn` on 200 images for one epoch."""
    out = tmp_path_factory.mktemp("runs") / "cnn.npz"
    args = ["train", "--model", "cnn", "--n-filters", "4", "8", "--activation", "relu"]
    args += ["--dropout", "0", "--data-dir", str(data_dir), "--limit", "200", "--n-epochs", "1"]
    assert cli.main([*args, "--out", str(out)]) == 0
    return out


def run_main(args: list[str], capsys) -> tuple[int, str, str]:
    code = cli.main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    lines = [
        line
        for line in err.splitlines()
        if line.strip() and not line.startswith("mnist_nn: warning: ")
    ]
    assert code != 0
    assert len(lines) == 1, f"expected one error line, got {lines}"
    assert "error" in lines[0] and "Traceback" not in err
    for word in words:
        assert word in lines[0]


def test_download_finds_files_already_in_place(data_dir, capsys):
    code, out, _ = run_main(["download", "--data-dir", str(data_dir)], capsys)
    assert code == 0
    assert "600 training and 200 test images" in out and str(data_dir) in out


def test_download_failure_says_what_was_tried_and_how_to_place_the_files(
    tmp_path, monkeypatch, capsys
):
    from dataclasses import replace

    from mnist_nn import datasets

    # A mirror on a local port where nothing listens: the connection is refused at once.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # free now, and nothing will listen once it is closed
    offline = replace(MNIST, mirrors=(f"http://127.0.0.1:{port}/",))
    monkeypatch.setitem(datasets.DATASETS, "mnist", offline)
    code, _, err = run_main(["download", "--data-dir", str(tmp_path)], capsys)
    assert code != 0 and "Traceback" not in err
    first_line, *advice = err.strip().splitlines()
    assert first_line.startswith("mnist_nn download: error: Could not download")
    advice = "\n".join(advice)  # the library's advice reaches the user whole
    assert f"http://127.0.0.1:{port}/" in advice and str(tmp_path) in advice
    assert "--data-dir" in advice and "--dataset NAME" in advice  # advice for the command line
    assert "t10k-images-idx3-ubyte.gz" in advice and "by hand" in advice
    assert not list(tmp_path.iterdir())  # nothing half-downloaded left behind


def test_out_ending_in_png_is_refused_so_the_curves_cannot_overwrite_the_model(
    data_dir, tmp_path, capsys
):
    args = ["train", "--data-dir", str(data_dir), "--out", str(tmp_path / "model.png")]
    code, _, err = run_main(args, capsys)
    assert_one_line_error(code, err, "--out", ".npz")
    assert not list(tmp_path.iterdir())


def test_mnist_test_split_is_a_dataset_choice(tmp_path, capsys):
    # Only the two test files, as on a machine that cannot get MNIST's training file.
    _, (X_test, y_test) = load_synthetic(n_train=1, n_test=8_050, seed=1)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", X_test)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", y_test.astype(np.uint8))
    args = ["download", "--dataset", "mnist-test-split", "--data-dir", str(tmp_path)]
    code, out, _ = run_main(args, capsys)
    assert code == 0 and "mnist-test-split: 8,000 training and 50 test images" in out, out


def test_train_writes_model_and_learning_curves(trained, capsys):
    assert trained.is_file() and trained.with_suffix(".png").is_file()
    model = load_model(trained)
    assert [layer.n_outputs for layer in model.layers if hasattr(layer, "n_outputs")] == [32, 10]


def test_train_prints_one_line_per_epoch_and_test_accuracy(data_dir, tmp_path, capsys):
    out_path = tmp_path / "m.npz"
    code, out, _ = run_main(
        [
            "train",
            "--data-dir",
            str(data_dir),
            "--hidden-sizes",
            "16",
            "--n-epochs",
            "2",
            "--optimizer",
            "momentum",
            "--dropout",
            "0.1",
            "--weight-decay",
            "1e-4",
            "--out",
            str(out_path),
        ],
        capsys,
    )
    assert code == 0
    epoch_lines = [line for line in out.splitlines() if line.startswith("epoch ")]
    assert len(epoch_lines) == 2 and "val loss" in epoch_lines[0]
    assert "test accuracy" in out and str(out_path) in out


def test_ctrl_c_keeps_the_best_model_so_far(data_dir, tmp_path, monkeypatch, capsys):
    from mnist_nn import train

    real_fit = train.fit

    def fit_interrupted_after_two_epochs(*args, on_epoch_end, **kwargs):
        def callback(row):
            on_epoch_end(row)
            if row["epoch"] == 2:
                raise KeyboardInterrupt

        return real_fit(*args, on_epoch_end=callback, **kwargs)

    monkeypatch.setattr(train, "fit", fit_interrupted_after_two_epochs)
    out_path = tmp_path / "m.npz"
    code, out, err = run_main(
        [
            "train",
            "--data-dir",
            str(data_dir),
            "--hidden-sizes",
            "16",
            "--n-epochs",
            "50",
            "--out",
            str(out_path),
        ],
        capsys,
    )
    assert code == cli.EXIT_INTERRUPTED
    assert "interrupted" in err and "Traceback" not in err
    assert load_model(out_path).n_params > 0 and out_path.with_suffix(".png").is_file()
    assert "test accuracy" in out
    assert load_model(out_path).provenance["best_epoch"] in (1, 2)  # recorded after Ctrl-C too


def test_evaluate_prints_accuracy_per_class_and_confusion_matrix(trained, data_dir, capsys):
    code, out, _ = run_main(["evaluate", str(trained), "--data-dir", str(data_dir)], capsys)
    assert code == 0
    assert "test accuracy" in out and "confusion matrix" in out
    model = load_model(trained)
    (X_test, y_test) = load_synthetic(n_train=600, n_test=200, seed=0)[1]
    expected = model.evaluate(X_test, y_test).accuracy
    assert f"test accuracy {expected:.2%}" in out
    table = out.split("predicted):\n")[1].splitlines()
    counts = np.array([[int(value) for value in row.split()[1:]] for row in table[1:]])
    assert counts.shape == (10, 10) and counts.sum() == 200


def test_predict_gives_digit_and_top_three(trained, capsys):
    images = [EXAMPLES / "digit-3.png", EXAMPLES / "digit-7.jpg"]
    code, out, _ = run_main(["predict", str(trained), *map(str, images)], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    for line, image in zip(lines, images, strict=True):
        assert line.startswith(f"{image}: ")
        assert line.count("%") == 3


def test_train_cnn_builds_conv_blocks_sized_by_filters(trained_cnn):
    model = load_model(trained_cnn)
    assert model.input_shape == (1, 28, 28)
    conv_filters = [layer.n_filters for layer in model.layers if isinstance(layer, Conv2D)]
    assert conv_filters == [4, 8] and model.n_classes == 10
    assert trained_cnn.with_suffix(".png").is_file()


def test_evaluate_and_predict_a_saved_cnn(trained_cnn, data_dir, capsys):
    code, out, _ = run_main(["evaluate", str(trained_cnn), "--data-dir", str(data_dir)], capsys)
    assert code == 0
    (X_test, y_test) = load_synthetic(n_train=600, n_test=200, seed=0)[1]
    expected = load_model(trained_cnn).evaluate(X_test, y_test).accuracy
    assert f"test accuracy {expected:.2%}" in out
    code, out, _ = run_main(["predict", str(trained_cnn), str(EXAMPLES / "digit-3.png")], capsys)
    assert code == 0 and out.count("%") == 3


def test_predict_missing_image_is_one_line_and_fails(trained, tmp_path, capsys):
    code, out, err = run_main(["predict", str(trained), str(tmp_path / "nope.png")], capsys)
    assert_one_line_error(code, err, "nope.png")


def test_too_many_conv_blocks_for_the_image_size_say_so(data_dir, capsys):
    args = ["train", "--model", "cnn", "--n-filters", *"222222", "--data-dir", str(data_dir)]
    code, _, err = run_main(args, capsys)
    assert_one_line_error(
        code, err, "--n-filters (2, 2, 2, 2, 2, 2) gives 6 conv blocks", "28x28", "fewer"
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["evaluate", "missing.npz"], ["missing.npz"]),
        (["train", "--n-epochs", "0"], ["--n-epochs"]),
        (["train", "--hidden-sizes", "0"], ["--hidden-sizes"]),
        (["train", "--val-fraction", "1.5"], ["--val-fraction"]),
        (["train", "--optimizer", "rmsprop"], ["rmsprop"]),
        (["train", "--n-epochs", "many"], ["many"]),
        (["train", "--model", "transformer"], ["transformer"]),
        (["train", "--model", "cnn", "--hidden-sizes", "32"], ["--hidden-sizes", "mlp"]),
        (["train", "--model", "cnn", "--activation", "tanh"], ["--activation", "mlp"]),
        (["train", "--model", "cnn", "--dropout", "0.2"], ["--dropout", "mlp"]),
        (["train", "--model", "cnn", "--n-filters", "8", "0"], ["--n-filters"]),
        (["train", "--n-filters", "8"], ["--n-filters", "cnn"]),
        (["frobnicate"], ["frobnicate"]),
        ([], ["required"]),
    ],
)
def test_bad_arguments_and_missing_files_give_one_line(args, words, capsys):
    try:
        code = cli.main(args)
    except SystemExit as stop:  # argparse's own usage errors
        code = stop.code
    assert_one_line_error(code, capsys.readouterr().err, *words)


def test_damaged_model_file_is_one_line(tmp_path, data_dir, capsys):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    code, _, err = run_main(["evaluate", str(bad), "--data-dir", str(data_dir)], capsys)
    assert_one_line_error(code, err, "bad.npz")


@pytest.mark.parametrize(
    "command", [[], ["download"], ["train"], ["evaluate"], ["predict"], ["bench"]]
)
def test_help_everywhere(command, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*command, "--help"])
    assert stop.value.code == 0
    assert "usage: python -m mnist_nn" in capsys.readouterr().out


def test_module_entry_point_runs_and_errors_without_traceback(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-m", "mnist_nn", "evaluate", str(tmp_path / "none.npz")],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert_one_line_error(completed.returncode, completed.stderr, "none.npz")


def test_bench_tiny_mode_writes_json(tmp_path, capsys):
    path = tmp_path / "bench.json"
    code, out, _ = run_main(["bench", "--tiny", "--no-torch", "--json", str(path)], capsys)
    assert code == 0
    results = json.loads(path.read_text())
    (case,) = results["cases"]
    ours = case["frameworks"]["mnist_nn"]
    assert ours["median_epoch_seconds"] > 0 and 0.0 <= ours["test_accuracy"][0] <= 1.0
    assert ours["peak_rss_mb"] > 0 and results["gemm_peak_gflops"] > 0
    assert "| 784-128-64-10 momentum b128 |" in out


def test_bench_with_a_broken_torch_says_so_and_how_to_skip_it(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "site" / "torch"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise OSError("libtorch_cpu.so: cannot open")\n')
    monkeypatch.syspath_prepend(str(tmp_path / "site"))  # found by the parent ...
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "site"))  # ... imported by the worker
    code, _, err = run_main(["bench", "--tiny", "--json", str(tmp_path / "b.json")], capsys)
    assert_one_line_error(code, err, "libtorch_cpu.so: cannot open", "--no-torch")
    assert "please report" not in err


def test_bench_flop_count_matches_the_layer_products():
    from mnist_nn.bench import BenchCase

    # forward 784*8 + 8*10; backward dW for both layers, dX only for the second
    case = BenchCase.of((8,), "adam", 32)
    assert case.flops_per_sample() == 2 * (2 * (784 * 8 + 8 * 10) + 8 * 10)


def test_bench_cnn_case_name_and_flop_count():
    from mnist_nn.bench import CASES, BenchCase

    case = BenchCase.of((16, 32), "adam", 128, model="cnn")
    assert case.name == "cnn 16-32 adam b128" and case in CASES
    # conv 5x5 padding 2 keeps 28x28, then 14x14 after the pool: out_h*out_w*F*k*k*C each
    conv1, conv2, dense = 28 * 28 * 16 * 25 * 1, 14 * 14 * 32 * 25 * 16, 7 * 7 * 32 * 10
    assert case.flops_per_sample() == 2 * (3 * (conv1 + conv2 + dense) - conv1)


def test_bench_tiny_runs_the_cnn_case_without_torch(tmp_path, monkeypatch, capsys):
    from mnist_nn import bench

    monkeypatch.setattr(bench, "TINY_SIZES", (256, 64))  # the CNN is slower: fewer images
    path = tmp_path / "bench.json"
    args = ["bench", "--tiny", "--no-torch", "--case", "cnn 16-32 adam b128", "--json", str(path)]
    code, out, _ = run_main(args, capsys)
    assert code == 0 and "| cnn 16-32 adam b128 |" in out
    (case,) = json.loads(path.read_text())["cases"]
    assert case["settings"]["model"] == "cnn" and case["settings"]["n_filters"] == [16, 32]
    # the worker process rebuilt the case as a cnn: build_cnn's 28,938 parameters
    assert case["frameworks"]["mnist_nn"]["n_params"] == 28_938


def test_interrupt_before_the_first_epoch_ends_saves_nothing(
    data_dir, tmp_path, monkeypatch, capsys
):
    from mnist_nn import model as model_module

    def interrupt(self, X, training=False):
        raise KeyboardInterrupt

    monkeypatch.setattr(model_module.Model, "forward", interrupt)
    out_path = tmp_path / "m.npz"
    code, _, err = run_main(["train", "--data-dir", str(data_dir), "--out", str(out_path)], capsys)
    assert code == cli.EXIT_INTERRUPTED and "no model saved" in err
    assert not out_path.exists()


def test_every_setting_is_a_train_option_with_the_same_name():
    import dataclasses

    from mnist_nn.settings import Settings

    train = next(
        action.choices["train"]
        for action in cli.build_parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    options = {option for action in train._actions for option in action.option_strings}
    for knob in dataclasses.fields(Settings):
        assert "--" + knob.name.replace("_", "-") in options


def test_options_become_the_settings_recorded_in_the_saved_model(trained):
    settings = load_model(trained).settings
    assert settings.hidden_sizes == (32,) and settings.n_epochs == 3 and settings.model == "mlp"


SCRIPT_WITHOUT_RESOURCE = """
import sys
sys.modules["resource"] = None  # as on Windows: importing it raises ImportError
from mnist_nn import cli
try:
    cli.main(["train", "--help"])
except SystemExit as stop:
    assert stop.code == 0
import mnist_nn
assert "mnist_nn.bench" not in sys.modules and "torch" not in sys.modules
"""


def test_train_help_and_import_need_no_benchmark_and_no_unix_only_module():
    completed = subprocess.run(
        [sys.executable, "-c", SCRIPT_WITHOUT_RESOURCE], capture_output=True, text=True, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stderr
    assert "--hidden-sizes" in completed.stdout


def test_evaluate_refuses_test_images_the_model_was_trained_on(trained, data_dir, tmp_path, capsys):
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    for kind in ("images", "labels"):  # the training files, posing as the test files
        train_file = data_dir / MNIST.files[f"train-{kind}"].name.removesuffix(".gz")
        test_name = MNIST.files[f"test-{kind}"].name.removesuffix(".gz")
        (leaky / test_name).write_bytes(train_file.read_bytes())
        (leaky / train_file.name).write_bytes(train_file.read_bytes())
    code, _, err = run_main(["evaluate", str(trained), "--data-dir", str(leaky)], capsys)
    assert_one_line_error(code, err, "training images", "--allow-overlap")
    args = ["evaluate", str(trained), "--data-dir", str(leaky), "--allow-overlap"]
    code, out, _ = run_main(args, capsys)
    assert code == 0 and "flattering" in out and "test accuracy" in out


def test_saved_model_remembers_its_data_and_predict_uses_its_class_names(trained, capsys):
    model = load_model(trained)
    assert model.provenance["dataset"] == "mnist" and model.provenance["n_train"] == 540
    assert model.provenance["class_names"] == [str(digit) for digit in range(10)]
    assert 0.0 <= model.provenance["test_accuracy"] <= 1.0 and model.train_fingerprint.size > 0
    fashion = trained.with_name("fashion.npz")
    model.provenance["class_names"] = ["T-shirt/top", *"abcdefghi"]
    model.save(fashion)
    code, out, _ = run_main(["predict", str(fashion), str(EXAMPLES / "digit-3.png")], capsys)
    assert code == 0
    predicted = out.split(": ", 1)[1].split("  (")[0]
    assert predicted in ["T-shirt/top", *"abcdefghi"]


def test_predict_debug_dir_shows_what_the_network_saw(trained, tmp_path, capsys):
    images = [EXAMPLES / "digit-4-paper-photo.jpg", EXAMPLES / "digit-2-transparent.png"]
    args = ["predict", str(trained), *map(str, images), "--debug-dir", str(tmp_path / "seen")]
    code, out, _ = run_main(args, capsys)
    assert code == 0 and out.count("%") == 6
    for image in images:
        assert (tmp_path / "seen" / f"{image.stem}-prepared.png").stat().st_size > 1000


@pytest.mark.parametrize("command", ["download", "predict"])
def test_a_file_where_a_folder_is_expected_is_named(command, trained, tmp_path, capsys):
    in_the_way = tmp_path / "in-the-way"
    in_the_way.write_text("a file, not a folder")
    if command == "download":
        args = ["download", "--data-dir", str(in_the_way / "data")]
    else:
        image = str(EXAMPLES / "digit-3.png")
        args = ["predict", str(trained), image, "--debug-dir", str(in_the_way)]
    code, out, err = run_main(args, capsys)
    assert_one_line_error(code, err, f"{in_the_way} is a file, not a folder")
    assert "File exists" not in err and "Not a directory" not in err


def test_predict_names_the_file_when_an_image_is_blank_and_goes_on(trained, tmp_path, capsys):
    from PIL import Image

    blank = tmp_path / "blank.png"
    Image.new("L", (60, 60), color=200).save(blank)
    args = ["predict", str(trained), str(blank), str(EXAMPLES / "digit-3.png")]
    code, out, err = run_main(args, capsys)
    assert code != 0 and "blank.png" in err and "blank" in err and "Traceback" not in err
    assert "digit-3.png: " in out


@pytest.mark.parametrize(
    "options, words",
    [
        (["--hidden-sizes", "100000000"], ["Dense(784 -> 100000000)", "at most"]),
        (["--model", "cnn", "--n-filters", "100000", "100000"], ["Conv2D", "at most"]),
        (["--model", "cnn", "--n-filters", "60000"], ["at most"]),
        # a network whose saved file load_model would refuse: 316 million per image
        (["--model", "cnn", "--n-filters", "160", "400"], ["multiply-adds", "--n-filters"]),
        (["--out", "/dev/null"], ["not a regular file"]),
        (["--seed", "-1"], ["--seed"]),
    ],
)
def test_absurd_sizes_and_bad_outputs_are_refused_before_training(options, words, capsys):
    args = ["train", "--dataset", "synthetic", "--limit", "100", "--n-epochs", "1", *options]
    code, out, err = run_main(args, capsys)
    assert_one_line_error(code, err, *words)
    assert "epoch 1/1" not in out  # refused before any training


def test_out_under_a_file_or_in_a_folder_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    for out in (tmp_path / "file" / "m.npz", tmp_path):
        args = ["train", "--dataset", "synthetic", "--limit", "100", "--out", str(out)]
        code, _, err = run_main(args, capsys)
        assert_one_line_error(code, err, str(out))


def test_an_unexpected_error_is_one_line_too(capsys):
    def broken(args):
        raise RuntimeError("torch is broken")

    args = cli.build_parser().parse_args(["download"])
    args.run = broken
    code = cli._run(args)
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR and "RuntimeError: torch is broken" in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_home_folder_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--data-dir", "~no-such-user-here/x"])
    assert stop.value.code == cli.EXIT_USAGE
    assert "no user 'no-such-user-here'; give a full path" in capsys.readouterr().err


def test_a_user_without_a_home_is_told_to_give_a_full_path(monkeypatch, capsys):
    import pwd

    def no_entry(uid):
        raise KeyError(uid)  # a container user without a passwd entry

    monkeypatch.delenv("HOME", raising=False)
    monkeypatch.setattr(pwd, "getpwuid", no_entry)
    with pytest.raises(SystemExit):
        cli.main(["train", "--out", "~/m.npz"])
    assert_one_line_error(2, capsys.readouterr().err, "HOME is not set", "give a full path")


def test_a_crafted_model_file_is_one_line_without_traceback(tmp_path, capsys):
    data = bytearray(build_mlp((8,)).save(tmp_path / "model.npz").read_bytes())
    data[8] = data[data.index(b"PK\x01\x02") + 10] = 99  # a compression zipfile cannot read
    crafted = tmp_path / "crafted.npz"
    crafted.write_bytes(bytes(data))
    code, _, err = run_main(["predict", str(crafted), str(tmp_path / "digit.png")], capsys)
    assert_one_line_error(code, err, "crafted.npz", "truncated or corrupted", "save or train")


def test_a_test_file_too_small_for_mnist_test_split_says_how_many_images(tmp_path, capsys):
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((5, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.arange(5, dtype=np.uint8))
    args = ["train", "--dataset", "mnist-test-split", "--data-dir", str(tmp_path)]
    code, _, err = run_main([*args, "--out", str(tmp_path / "model.npz")], capsys)
    assert_one_line_error(code, err, "holds 5 images", "between 1 and 4", "t10k files")


def small_train(data_dir: Path, out: Path, *options: str) -> list[str]:
    args = ["train", "--data-dir", str(data_dir), "--hidden-sizes", "16", "--n-epochs", "2"]
    return [*args, "--limit", "300", "--out", str(out), *options]


def test_ctrl_c_during_the_test_evaluation_keeps_the_saved_model(
    data_dir, tmp_path, monkeypatch, capsys
):
    from mnist_nn import model as model_module

    real_evaluate = model_module.Model.evaluate

    def interrupted_evaluate(self, X, y, batch_size=None):
        if len(X) == 200:  # the test set, not the 30 validation images
            raise KeyboardInterrupt  # the user takes the silent evaluation for a hang
        return real_evaluate(self, X, y, batch_size)

    monkeypatch.setattr(model_module.Model, "evaluate", interrupted_evaluate)
    out = tmp_path / "m.npz"
    code, _, err = run_main(small_train(data_dir, out), capsys)
    assert code == cli.EXIT_INTERRUPTED and "Traceback" not in err
    provenance = load_model(out).provenance
    epoch = provenance["best_epoch"]
    assert f"the model of epoch {epoch} is saved in {out}, without its test accuracy" in err
    assert epoch in (1, 2) and "test_accuracy" not in provenance


def test_ctrl_c_during_the_save_waits_for_the_save(data_dir, tmp_path, monkeypatch, capsys):
    import os
    import signal

    from mnist_nn import saving

    real_save = saving.save_model

    def save_interrupted_at_its_start(model, path):
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C arrives as the save begins
        return real_save(model, path)

    monkeypatch.setattr(saving, "save_model", save_interrupted_at_its_start)
    out = tmp_path / "m.npz"
    code, _, err = run_main(small_train(data_dir, out), capsys)
    assert code == cli.EXIT_INTERRUPTED and "is saved in" in err
    assert load_model(out).provenance["best_epoch"] in (1, 2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.npz"]  # no temporary left


@pytest.mark.skipif(not hasattr(__import__("signal"), "SIGTERM"), reason="no SIGTERM")
def test_sigterm_during_training_keeps_the_best_epoch_like_ctrl_c(
    data_dir, tmp_path, monkeypatch, capsys
):
    import os
    import signal

    from mnist_nn import train

    class Killed(Exception):
        """What the default SIGTERM would do: end the run with nothing saved."""

    def killed(signum, frame):
        raise Killed

    previous = signal.signal(signal.SIGTERM, killed)
    real_fit = train.fit

    def fit_terminated_after_two_epochs(*args, on_epoch_end, **kwargs):
        def callback(row):
            on_epoch_end(row)
            if row["epoch"] == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # `timeout`, `docker stop`, a scheduler

        return real_fit(*args, on_epoch_end=callback, **kwargs)

    monkeypatch.setattr(train, "fit", fit_terminated_after_two_epochs)
    out = tmp_path / "m.npz"
    try:
        code, stdout, err = run_main(small_train(data_dir, out, "--n-epochs", "50"), capsys)
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == cli.EXIT_TERMINATED and "terminated (SIGTERM)" in err
    assert load_model(out).provenance["best_epoch"] <= 2 and "test accuracy" in stdout
    assert after is killed  # put back after training


def test_a_full_disk_at_save_time_keeps_the_accuracy_line_and_says_so(
    data_dir, tmp_path, monkeypatch, capsys
):
    import errno

    def full_disk(file, **arrays):
        file.write(b"half a model")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    out = tmp_path / "runs" / "m.npz"
    code, stdout, err = run_main(small_train(data_dir, out), capsys)
    assert_one_line_error(code, err, "the model is not saved", f"could not write {out}")
    assert "No space left on device" in err
    assert "free some space" in err and "Errno" not in err
    assert "test accuracy" in stdout
    assert list((tmp_path / "runs").iterdir()) == []  # no half-written file


def test_learning_curves_that_cannot_be_written_are_a_warning(
    data_dir, tmp_path, monkeypatch, capsys
):
    import errno

    from matplotlib.figure import Figure

    def full_disk(self, path, **options):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    out = tmp_path / "m.npz"
    code, stdout, err = run_main(small_train(data_dir, out), capsys)
    assert code == 0 and "warning: could not write the learning curves" in err
    assert f"saved the model to {out}" in stdout and load_model(out).n_params > 0
    assert not out.with_suffix(".png").exists()


@pytest.mark.skipif(not Path("/proc/version").is_file(), reason="Linux's /proc")
def test_out_where_nothing_can_be_created_is_refused_before_training(data_dir, monkeypatch, capsys):
    import os

    monkeypatch.setattr(os, "access", lambda *args, **kwargs: True)  # as for root
    code, stdout, err = run_main(small_train(data_dir, Path("/proc/version")), capsys)
    assert_one_line_error(code, err, "--out /proc/version: cannot write in /proc")
    assert "epoch" not in stdout  # refused before training


def test_timeout_option_shortens_the_wait_for_a_silent_mirror(tmp_path, monkeypatch, capsys):
    from dataclasses import replace

    from mnist_nn import datasets

    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        mirror = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setitem(datasets.DATASETS, "mnist", replace(MNIST, mirrors=(mirror,)))
        args = ["download", "--data-dir", str(tmp_path), "--timeout", "0.2"]
        code, _, err = run_main(args, capsys)
    assert code == cli.EXIT_ERROR and "connected, but no answer within 0.2 s" in err


@pytest.mark.parametrize("value", ["0", "-1", "soon", "inf"])
def test_timeout_must_be_a_positive_number_of_seconds(value, capsys):
    with pytest.raises(SystemExit):
        cli.main(["download", "--timeout", value])
    assert_one_line_error(2, capsys.readouterr().err, "--timeout", "seconds")


def test_an_unknown_home_folder_in_mnist_nn_data_is_one_line(monkeypatch, capsys):
    monkeypatch.setenv("MNIST_NN_DATA", "~nosuchuser/x")
    code, _, err = run_main(["download"], capsys)
    assert_one_line_error(code, err, "MNIST_NN_DATA", "nosuchuser")
    assert "please report" not in err and "RuntimeError" not in err


def test_more_threads_than_cores_are_capped_with_a_warning(data_dir, tmp_path, monkeypatch, capsys):
    from mnist_nn import threads

    monkeypatch.setattr(threads, "available_cores", lambda: 2)
    out = tmp_path / "m.npz"
    code, _, err = run_main(small_train(data_dir, out, "--n-threads", "64"), capsys)
    assert code == 0 and "--n-threads 64 is more than the 2 usable cores; using 2" in err
    assert load_model(out).settings.n_threads == 2


def test_every_option_states_its_default_once():
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    for command in commands.choices.values():
        for action in command._actions:
            assert (action.help or "").count("(default:") <= 1, action.help
            assert "(default: None)" not in (action.help or ""), action.help


def test_a_misspelt_option_suggests_the_right_one_and_its_help(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["train", "--epochs", "3"])
    assert stop.value.code == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert_one_line_error(2, err, "--epochs", "did you mean --n-epochs?", "train --help")


def test_a_folder_given_as_the_model_is_called_a_folder(trained, tmp_path, capsys):
    (tmp_path / "m.npz").write_bytes(trained.read_bytes())
    code, _, err = run_main(["evaluate", str(tmp_path)], capsys)
    assert_one_line_error(code, err, f"{tmp_path} is a folder", str(tmp_path / "m.npz"))


def test_ctrl_c_right_after_training_still_saves_the_model(data_dir, tmp_path, monkeypatch, capsys):
    real_record = cli._record_provenance
    calls = []

    def interrupted_once(*args):
        calls.append(args)
        if len(calls) == 1:
            raise KeyboardInterrupt  # before the first save has begun
        real_record(*args)

    monkeypatch.setattr(cli, "_record_provenance", interrupted_once)
    out = tmp_path / "m.npz"
    code, _, err = run_main(small_train(data_dir, out), capsys)
    assert code == cli.EXIT_INTERRUPTED and f"is saved in {out}" in err
    assert load_model(out).provenance["best_epoch"] in (1, 2)


def test_train_calibrates_the_not_sure_check_that_predict_uses(
    data_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(cli, "MIN_IMAGES_FOR_DIGIT_CHECK", 100)  # full MNIST in real use
    monkeypatch.setattr(cli, "NON_DIGITS_PER_KIND", 5)
    out = tmp_path / "m.npz"
    code, _, err = run_main(small_train(data_dir, out), capsys)
    assert code == 0 and "calibrating predict's check" in err
    check = load_model(out).provenance["digit_check"]
    assert np.isfinite(check["threshold"]) and len(check["weights"]) > 10
