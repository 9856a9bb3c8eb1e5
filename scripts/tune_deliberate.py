"""Choose a model's item-level deliberate-metaphor threshold on labelled dev items.

`seci train` does this itself when its dev data has `metaphor` labels; this script does the same
for a model trained before that step existed, and records the result in the model directory.

    python scripts/tune_deliberate.py --model models/seci-fast --data data/seci/dev.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.classify.engine import Engine
from pipeline.train.card import write_model_card
from pipeline.train.data import file_digest, load_labelled
from pipeline.train.evaluate import tune_deliberate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    args = parser.parse_args()
    engine = Engine.from_dir(args.model)
    threshold, strong, report = tune_deliberate(engine, load_labelled([args.data], engine.config.modes))
    config = json.loads((args.model / "config.json").read_text(encoding="utf-8"))
    config["deliberate_threshold"] = threshold
    config["deliberate_strong_token"] = strong
    (args.model / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    record = json.loads((args.model / "training.json").read_text(encoding="utf-8"))
    record["config"]["model"]["deliberate_threshold"] = threshold
    record["config"]["model"]["deliberate_strong_token"] = strong
    record["deliberate_dev"] = report
    record["data"][str(args.data)] = file_digest(args.data)
    (args.model / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    write_model_card(args.model, record)
    print(json.dumps({"deliberate_threshold": threshold, "deliberate_strong_token": strong, **report}, indent=2))


if __name__ == "__main__":
    main()
