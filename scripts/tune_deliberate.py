"""Choose a model's item-level deliberate-metaphor settings on labelled training items; measure them on dev.

`seci train` does this itself when its training data has `metaphor` labels; this script does the same for a
model trained before that step existed, and records the result in the model directory.

    python scripts/tune_deliberate.py --model models/seci-fast --tune data/seci/train.jsonl --dev data/seci/dev.jsonl
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pipeline.classify.engine import Engine
from pipeline.train.card import write_model_card
from pipeline.train.data import file_digest, load_labelled
from pipeline.train.evaluate import deliberate_report, tune_deliberate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--tune", type=Path, required=True, help="labelled items the settings are chosen on")
    parser.add_argument("--dev", type=Path, required=True, help="labelled items they are measured on")
    args = parser.parse_args()
    engine = Engine.from_dir(args.model)
    modes = engine.config.modes
    chosen, tuned = tune_deliberate(engine, load_labelled([args.tune], modes))
    for name, value in chosen.items():
        setattr(engine.config, name, value)
    dev = deliberate_report(engine, load_labelled([args.dev], modes))
    config = json.loads((args.model / "config.json").read_text(encoding="utf-8"))
    config.update(chosen)
    (args.model / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    record = json.loads((args.model / "training.json").read_text(encoding="utf-8"))
    record["config"]["model"].update(chosen)
    record["deliberate_train"] = tuned
    record["deliberate_dev"] = dev
    for path in (args.tune, args.dev):
        record["data"][str(path)] = file_digest(path)
    (args.model / "training.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    write_model_card(args.model, record)
    print(json.dumps({"tuned": tuned, "dev": dev}, indent=2))


if __name__ == "__main__":
    main()
