"""The results card: each recipe the README reports, trained on full MNIST for
several seeds with the command line, tested on the real t10k test set.

Each run is `python -m mnist_nn train ...` as the card prints it (plus --data-dir): 10% of the
60,000 training images are held out for validation (the model ends at its lowest validation
loss; nothing is tuned on the test set). The test accuracy, the epochs' seconds and the
machine's load are read from its output and merged into mnist_nn/data/results_card.json;
--readme rewrites the table between the results-card markers in README.md from that file.

    python benchmarks/results_card.py --data-dir DIR \
        --recipes seed tuned-mlp --seeds 0 1 2
    python benchmarks/results_card.py --record mlp-elastic 0 /tmp/run.log   # a run already made
    python benchmarks/results_card.py --readme
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CARD = ROOT / "mnist_nn" / "data" / "results_card.json"  # shipped in the package
README = ROOT / "README.md"
MARKERS = ("<!-- results-card:start -->", "<!-- results-card:end -->")

# name: (what the README calls it, the train options). Each row's command adds the data options,
# --seed and --out.
RECIPES = {
    "seed": (
        "784-32-16-10, Adam, 15 epochs (the notebook's first network)",
        "--hidden-sizes 32 16 --n-epochs 15",
    ),
    "tuned-mlp": (
        "784-128-64-10, dropout 0.2, Adam 3e-3, batch 64, cosine, 20 epochs (notebook's tuned MLP)",
        "--hidden-sizes 128 64 --dropout 0.2 --learning-rate 0.003 --batch-size 64 "
        "--schedule cosine --n-epochs 20",
    ),
    "mlp-800": (
        "784-800-800-10, dropout 0.2, Adam 1e-3, cosine, 30 epochs",
        "--hidden-sizes 800 800 --dropout 0.2 --learning-rate 0.001 --schedule cosine "
        "--n-epochs 30",
    ),
    "mlp-elastic": (
        "784-800-800-10, dropout 0.2, Adam 1e-3, cosine, 30 epochs, --augment elastic",
        "--hidden-sizes 800 800 --dropout 0.2 --learning-rate 0.001 --schedule cosine "
        "--n-epochs 30 --augment elastic",
    ),
    "cnn": (
        "CNN 5x5x16-pool-5x5x32-pool-dense (build_cnn), Adam 3e-3, cosine, 15 epochs",
        "--model cnn --n-filters 16 32 --learning-rate 0.003 --schedule cosine --n-epochs 15",
    ),
    "cnn-affine": (
        "CNN 5x5x16-pool-5x5x32-pool-dense (build_cnn), Adam 3e-3, cosine, 15 epochs, "
        "--augment affine",
        "--model cnn --n-filters 16 32 --learning-rate 0.003 --schedule cosine --n-epochs 15 "
        "--augment affine",
    ),
    "cnn-wide-affine": (
        "CNN 5x5x32-pool-5x5x64-pool-dense (build_cnn), Adam 3e-3, cosine, 15 epochs, "
        "--augment affine",
        "--model cnn --n-filters 32 64 --learning-rate 0.003 --schedule cosine --n-epochs 15 "
        "--augment affine",
    ),
}


def command(recipe: str, seed: int, data_dir: str | None) -> str:
    """The train command of one run; the card records it without the data folder (None), which
    belongs to the machine that ran it."""
    out = f"runs/card/{recipe}-seed{seed}.npz"
    data = f"--data-dir {data_dir} " if data_dir else ""
    return (
        f"python -m mnist_nn train --dataset mnist {data}{RECIPES[recipe][1]} "
        f"--seed {seed} --out {out}"
    )


def parse_log(text: str) -> dict:
    """Test accuracy, best epoch, training seconds and epochs from a train command's output."""
    text = text.replace("\r", "\n")
    test = re.search(r"test accuracy ([\d.]+)% \(loss [\d.]+\), model of epoch (\d+)", text)
    if test is None:
        raise ValueError("no 'test accuracy' line: the run did not finish")
    seconds = [float(s) for s in re.findall(r"^epoch .*?([\d.]+) s$", text, flags=re.M)]
    return {
        "test_accuracy": float(test.group(1)) / 100,
        "best_epoch": int(test.group(2)),
        "n_epochs": len(seconds),
        "train_seconds": round(sum(seconds), 1),
    }


def run(recipe: str, seed: int, data_dir: str, log_dir: Path) -> dict:
    line = command(recipe, seed, data_dir)
    log = log_dir / f"{recipe}-seed{seed}.log"
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    with log.open("w") as output:
        arguments = [sys.executable, *shlex.split(line)[1:]]  # this Python, as "python" says
        subprocess.run(arguments, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT, check=True)
    result = parse_log(log.read_text())
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    result["load"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    return result


def record(recipe: str, seed: int, result: dict, command_line: str) -> None:
    card = json.loads(CARD.read_text()) if CARD.exists() else {}
    entry = card.setdefault(recipe, {"description": RECIPES[recipe][0], "runs": {}})
    entry["description"] = RECIPES[recipe][0]
    entry["runs"][str(seed)] = {**result, "command": command_line}
    CARD.write_text(json.dumps(card, indent=2, sort_keys=True) + "\n")
    print(f"{recipe} seed {seed}: {result['test_accuracy']:.2%} in {result['train_seconds']:.0f} s")


def table(card: dict) -> str:
    """The README's results table: one row per recipe with runs, in RECIPES' order, the median
    of its seeds and each seed's figure, then the command of each row (without the data folder
    of the machine that ran it)."""
    lines = [
        "| network and training | test accuracy, median | each seed | minutes per run |",
        "|---|---|---|---|",
    ]
    commands = []
    for recipe in RECIPES:
        runs = card.get(recipe, {}).get("runs", {})
        if not runs:
            continue
        seeds = sorted(runs, key=int)
        median = statistics.median(runs[seed]["test_accuracy"] for seed in seeds)
        each = ", ".join(f"{seed}: {runs[seed]['test_accuracy']:.2%}" for seed in seeds)
        count = f"{len(seeds)} seeds" if len(seeds) > 1 else "1 seed"
        minutes = statistics.median(runs[seed]["train_seconds"] for seed in seeds) / 60
        lines.append(f"| {RECIPES[recipe][0]} | {median:.2%} ({count}) | {each} | {minutes:.1f} |")
        commands.append(f"- {RECIPES[recipe][0]}: `python -m mnist_nn train {RECIPES[recipe][1]}`")
    return "\n".join([*lines, "", "The command of each row (add `--seed N`):", "", *commands])


def write_readme(card: dict) -> None:
    text = README.read_text()
    start, end = (text.index(marker) for marker in MARKERS)
    text = text[: start + len(MARKERS[0])] + "\n" + table(card) + "\n" + text[end:]
    README.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("MNIST_NN_DATA", "data"))
    parser.add_argument("--recipes", nargs="+", choices=list(RECIPES), default=[])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--log-dir", type=Path, default=ROOT / "runs" / "card")
    parser.add_argument("--record", nargs=3, metavar=("RECIPE", "SEED", "LOG"))
    parser.add_argument("--readme", action="store_true", help="rewrite README's results table")
    args = parser.parse_args()
    args.log_dir.mkdir(parents=True, exist_ok=True)
    if args.record:
        recipe, seed, log = args.record
        result = parse_log(Path(log).read_text())
        record(recipe, int(seed), result, command(recipe, int(seed), None))
    for recipe in args.recipes:
        for seed in args.seeds:
            record(
                recipe,
                seed,
                run(recipe, seed, args.data_dir, args.log_dir),
                command(recipe, seed, None),
            )
    if args.readme:
        write_readme(json.loads(CARD.read_text()))
    if not (args.record or args.recipes or args.readme):
        parser.print_usage(sys.stderr)


if __name__ == "__main__":
    main()
