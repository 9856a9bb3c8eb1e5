"""The shipped model's outputs on a fixed sample, as the reference `tests/test_shipped_model.py` compares against.

    .venv/bin/python scripts/shipped_outputs.py [--model models/seci-fast] [--out tests/fixtures/shipped_outputs.json]

The sample is part of the bundled archive (`data/samples`): its 40 e-mails, its documents and one AMI meeting,
119 items, 32 of them longer than one window (one e-mail of 24,000 tokens). Scored in float32, so that any CPU
gives the same numbers to rounding. A change that is meant to leave the model's outputs alone (a faster engine,
loading, batching) must pass the test as it is; a change that is meant to change them (a new model version,
other windows) rewrites the reference with this script, and the diff shows what moved.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ("data/samples/emails", "data/samples/documents", "data/samples/meetings/ES2002a.json")


def shipped_outputs(model_dir: Path, root: Path = ROOT) -> dict:
    """Per item of the sample: its mode, the four probabilities, its windows and its flagged metaphor words."""
    from pipeline.classify.engine import Engine
    from pipeline.ingest import ingest
    from pipeline.items import Item

    items = [i for i in ingest([root / p for p in SAMPLE]) if isinstance(i, Item)]
    items.sort(key=lambda i: i.id)
    engine = Engine.from_dir(model_dir, device="cpu", dtype="float32")
    out = {}
    for item, p in zip(items, engine.predict([i.text for i in items]), strict=True):
        flagged = p.word_scores >= engine.config.metaphor_threshold
        spans = zip(p.words.starts[flagged], p.words.ends[flagged], strict=True)
        out[item.id] = {
            "mode": engine.config.modes[int(p.probabilities.argmax())],
            "probabilities": [round(float(x), 6) for x in p.probabilities],
            "windows": int(p.n_windows),
            "metaphor_words": [item.text[s:e] for s, e in spans],
        }
    return {"model": engine.name, "items": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "seci-fast")
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "shipped_outputs.json")
    args = parser.parse_args()
    args.out.write_text(json.dumps(shipped_outputs(args.model), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
