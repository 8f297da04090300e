"""A/B timing of one CNN training step: two copies of the package (e.g. the last commit, exported
with `git archive`, against the working tree), run in alternating subprocesses.

    git archive HEAD mnist_nn | tar -x -C /tmp/before
    python benchmarks/ab_cnn_step.py /tmp/before . --threads 1 2 --repeats 4

Each run is benchmarks/profile_cnn_step.py --time-only under one package root; the script prints
each side's median ms per step, the ratio new / old, and the load average before and after, for
each BLAS thread count. On a shared machine only such a ratio, measured in one run, means much.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

PROFILE = Path(__file__).resolve().parent / "profile_cnn_step.py"


def time_step(package_root: str, threads: int, extra: list[str]) -> float:
    env = dict(os.environ, PYTHONPATH=str(Path(package_root).resolve()))
    command = [sys.executable, str(PROFILE), "--time-only", "--threads", str(threads), *extra]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(output.strip().splitlines()[-1])["ms_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("old", help="package root of the old code")
    parser.add_argument("new", help="package root of the new code")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--n-steps", type=int, default=40)
    args = parser.parse_args()
    extra = ["--n-steps", str(args.n_steps)]
    if args.data_dir:
        extra += ["--data-dir", args.data_dir]
    for threads in args.threads:
        load_before = os.getloadavg()[0]
        times = {"old": [], "new": []}
        for _ in range(args.repeats):
            for side in times:  # alternated: old new old new ...
                times[side].append(time_step(getattr(args, side), threads, extra))
        old, new = (statistics.median(times[side]) for side in ("old", "new"))
        print(
            f"{threads} BLAS thread(s): old {old:.1f} ms/step, new {new:.1f} ms/step, "
            f"new/old {new / old:.2f}; load {load_before:.2f} -> {os.getloadavg()[0]:.2f}; "
            f"runs old {[round(t, 1) for t in times['old']]} new "
            f"{[round(t, 1) for t in times['new']]}",
            flush=True,
        )


if __name__ == "__main__":
    main()
