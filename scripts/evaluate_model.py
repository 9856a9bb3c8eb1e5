"""Run every evaluation a model card reports and rewrite the card with them.

    .venv/bin/python scripts/evaluate_model.py --model models/seci-fast [--shared ../shared]

Each entry of `evaluation.json` is keyed by the `seci evaluate` command that gives the same report, so any
number in the card can be re-printed on its own. The SECI modes are measured on dev-unseen (data/seci/dev.jsonl:
groups with no training item) and on the in-domain dev items; the item-level flag on dev-unseen; the word-level
metaphor files are VUA-18 test, VUA-verb test and, zero-shot, MOH-X and TroFi.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.train.card import write_model_card  # noqa: E402
from pipeline.train.evaluate import evaluate  # noqa: E402

METAPHOR_FILES = (
    "data/metaphor/vua18_seq/VUA_seq_formatted_test.csv",
    "data/metaphor/vua_verb/VUA_formatted_test.csv",
    "data/metaphor/moh-x/MOH-X_formatted_svo_cleaned.csv",
    "data/metaphor/trofi/TroFi_formatted_all3737.csv",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--dev", type=Path, default=Path("data/seci/dev.jsonl"))
    parser.add_argument("--in-domain", type=Path, default=Path("data/seci/dev_in_domain.jsonl"))
    parser.add_argument("--shared", type=Path, default=Path("../shared"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    jobs = [("seci", args.dev), ("seci", args.in_domain)]
    jobs += [("metaphor", args.shared / name) for name in METAPHOR_FILES]
    jobs.append(("metaphor", args.dev))
    results = {}
    for task, data in jobs:
        command = f"seci evaluate --model {args.model}" + (" --task metaphor" if task == "metaphor" else "")
        command += f" --data {data}"
        logging.info("%s", command)
        results[command] = evaluate(args.model, data, task=task)
    (args.model / "evaluation.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    record = json.loads((args.model / "training.json").read_text(encoding="utf-8"))
    card = write_model_card(args.model, record)
    logging.info("wrote %s and %s", args.model / "evaluation.json", card)


if __name__ == "__main__":
    main()
