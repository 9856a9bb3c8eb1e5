"""Assemble data/seci/{train,dev}.jsonl from the selected pool and the annotators' label files.

    python scripts/build_seci_data.py            # writes the data set and prints its statistics

Inputs: `data/seci/pool.jsonl` (from make_label_pool.py / extend_label_pool.py), the first-pass
labels `data/seci/labels/batch*.tsv` / `extra*.tsv` and the blind second pass
`data/seci/labels/second.tsv` (key, mode, secondary, confidence, metaphor, spans; tab-separated).

Corrections applied here, each counted in the output:
- ICSI meeting Bro022 is dev in QMSum but train in MRDA: the same meeting in two transcriptions
  would leak across the split, so its MRDA items move to dev.
- Items with the same text (after folding case and white space) are kept once: a dev copy wins
  over a train copy, otherwise the first key.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

CODES = {"S": "socialization", "E": "externalization", "C": "combination", "I": "internalization"}
MOVE_TO_DEV = ("icsi_mrda/database/Bro022.dadb",)
GUIDE_VERSION = 2


def read_labels(path: Path) -> dict[str, dict]:
    labels = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("\t")
        fields += [""] * (6 - len(fields))
        key, mode, secondary, confidence, metaphor, spans = (f.strip() for f in fields[:6])
        if mode not in CODES or secondary not in ("-", "", *CODES) or confidence not in ("h", "l"):
            raise ValueError(f"{path}:{n}: bad label line {line!r}")
        labels[key] = {
            "mode": CODES[mode],
            "secondary": CODES.get(secondary),
            "confidence": "high" if confidence == "h" else "low",
            "metaphor": metaphor == "1",
            "metaphor_spans": [s.strip() for s in spans.split("||") if s.strip()] if metaphor == "1" else [],
        }
    return labels


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def cohen_kappa(a: list[str], b: list[str]) -> float:
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("data/seci"))
    args = parser.parse_args()

    pool = {r["key"]: r for r in map(json.loads, (args.dir / "pool.jsonl").read_text(encoding="utf-8").splitlines())}
    first: dict[str, dict] = {}
    annotator: dict[str, str] = {}
    for path in sorted(args.dir.glob("labels/*.tsv")):
        if path.stem == "second":
            continue
        for key, label in read_labels(path).items():
            if key in first:
                raise ValueError(f"{key} labelled twice in the first pass ({annotator[key]}, {path.stem})")
            first[key] = label
            annotator[key] = path.stem

    moved = 0
    for row in pool.values():
        if row["split"] == "train" and row["path"].endswith(MOVE_TO_DEV):
            row["split"] = "dev"
            moved += 1

    # Dedupe on folded text; dev copies first so that they win.
    seen: set[str] = set()
    dropped = 0
    rows = {"train": [], "dev": []}
    for key in sorted(first, key=lambda k: (pool[k]["split"] != "dev", k)):
        row = pool[key]
        folded = fold(row["text"])
        if folded in seen:
            dropped += 1
            continue
        seen.add(folded)
        rows[row["split"]].append(
            {
                "id": row["id"],
                "text": row["text"],
                "source": row["source"],
                **first[key],
                "split": row["split"],
                "provenance": {
                    "path": row["path"],
                    "team": row["team"],
                    "selection": row["selection"],
                    "annotator": annotator[key],
                    "shown_shortened": row["shortened"],
                    "key": key,
                },
                "guide_version": GUIDE_VERSION,
            }
        )
    for split, items in rows.items():
        with (args.dir / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for item in sorted(items, key=lambda r: r["id"]):
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")

    # The blind second pass: agreement with the first labels on the same dev items.
    second = read_labels(args.dir / "labels" / "second.tsv")
    with (args.dir / "second_pass.jsonl").open("w", encoding="utf-8") as fh:
        for key in sorted(second):
            fh.write(json.dumps({"id": pool[key]["id"], **second[key]}, ensure_ascii=False) + "\n")
    both = [k for k in second if k in first]
    a = [first[k]["mode"] for k in both]
    b = [second[k]["mode"] for k in both]
    from sklearn.metrics import f1_score

    print(f"first-pass labels: {len(first)}; moved to dev (Bro022): {moved}; duplicates dropped: {dropped}")
    for split, items in rows.items():
        modes = Counter(r["mode"] for r in items)
        sources = Counter(r["source"] for r in items)
        metaphors = sum(r["metaphor"] for r in items)
        print(
            f"{split}: {len(items)} items; modes {dict(sorted(modes.items()))}; sources {dict(sources)}; "
            f"metaphor {metaphors}"
        )
    print(f"second pass: {len(both)} dev items labelled twice")
    print(
        f"  mode agreement {sum(x == y for x, y in zip(a, b, strict=True)) / len(both):.3f}, "
        f"Cohen's kappa {cohen_kappa(a, b):.3f}"
    )
    per_class = f1_score(a, b, labels=list(CODES.values()), average=None, zero_division=0)
    print(
        "  per-class F1 (second pass against first):",
        {m: round(float(f), 3) for m, f in zip(CODES.values(), per_class, strict=True)},
    )
    ma = [first[k]["metaphor"] for k in both]
    mb = [second[k]["metaphor"] for k in both]
    print(
        f"  metaphor flag: kappa {cohen_kappa([str(x) for x in ma], [str(x) for x in mb]):.3f}, "
        f"first {sum(ma)} positive, second {sum(mb)} positive, both {sum(x and y for x, y in zip(ma, mb, strict=True))}"
    )
    high = [k for k in both if first[k]["confidence"] == "high" and second[k]["confidence"] == "high"]
    ah = [first[k]["mode"] for k in high]
    bh = [second[k]["mode"] for k in high]
    if high:
        print(f"  both high confidence: {len(high)} items, kappa {cohen_kappa(ah, bh):.3f}")
    print("  confusion (rows first pass, columns second):")
    from sklearn.metrics import confusion_matrix

    for mode, line in zip(CODES.values(), confusion_matrix(a, b, labels=list(CODES.values())), strict=True):
        print(f"    {mode:16s}", *line)


if __name__ == "__main__":
    main()
