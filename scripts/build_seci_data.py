"""Assemble data/seci from the selected pool and the readers' label files, split by whole groups.

    python scripts/build_seci_data.py            # writes the data set, prints and saves its agreement figures

Inputs: `data/seci/pool.jsonl` (from make_label_pool.py), `configs/seci-data.yaml` (the dev-unseen groups) and
the label files under `data/seci/labels/` (key, mode, secondary, confidence, metaphor, spans; tab-separated):

- first readings: `batch*`, `extra*`, `figurative*`, `round4-*` (guide version 2), `round5-*`, `round6-*` and
  `round7-*` (version 3);
- blind second readings under version 3: `reread*` (the reader saw the text only);
- third readings of the items whose first two readings disagree: `adjudicate*` (the reader saw the text and the
  two modes proposed, not who proposed them, and chose under the guide). Their mode is final;
- round 8, an audit of one hard case (`make_label_pool.py --audit`): two new blind readings of each item it
  selects, `audit-a*` and `audit-b*`, and a third reading of their disagreements, `audit-adjudicate*`.

An item's label is its first reading where the second agrees or there is none, else the third reading's; an
audited item's label is the audit's: its two readings where they agree, else its third reading.
Each item records its readings (reader, mode, guide version) and whether it was adjudicated.

Outputs: `train.jsonl`; `dev.jsonl`, **dev-unseen**: every item of the groups listed in the config, none of
which has a training item; `dev_in_domain.jsonl`: the items of training groups that SPLITS.md puts in a dev part;
`agreement.json`: per-class agreement of the second readings with the first. Corrections, each counted:
ICSI meeting Bro022's MRDA items follow its QMSum transcription to dev, and items with the same text (folded
case and white space) are kept once, a dev copy winning.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import Counter
from pathlib import Path

import yaml

from pipeline.train.data import CODES
from pipeline.train.data import read_label_tsv as read_labels

MODES = tuple(CODES.values())
MOVE_TO_DEV = ("icsi_mrda/database/Bro022.dadb",)
FIRST = ("batch", "extra", "figurative", "round4-", "round5-", "round6-", "round7-")
VERSION_3 = ("round5-", "round6-", "round7-", "reread", "adjudicate", "audit")
AUDIT = ("audit-a", "audit-b", "audit-adjudicate")


def group_of(row: dict) -> str:
    """The group an item belongs to: what a user's archive would not share with our training data."""
    if row.get("group"):
        return row["group"]
    path, team = row["path"], row["team"]
    if "/qmsum/" in path or "/icsi_mrda/" in path:
        if team in ("covid", "education"):
            return f"committee:{team}"
        return f"ami:{team}" if re.match(r"^(ES|IS|TS)\d{4}$", team or "") else f"icsi:{team}"
    if "/enron_berkeley_categories/" in path:
        return f"enron:{team}"
    return path.split("/")[2]  # a document collection: python_peps, rust_rfcs, nodejs_tsc, google_eng_practices


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().lower()


def agreement(pairs: list[tuple[str, str]]) -> dict:
    """Agreement of two readings: raw, Cohen's kappa, and per class the specific agreement (2 x both / (first +
    second), the F1 of one reading against the other) with each reading's count."""
    from sklearn.metrics import cohen_kappa_score, confusion_matrix

    if not pairs:
        return {"items": 0}
    a, b = zip(*pairs, strict=True)
    per_class = {}
    for mode in MODES:
        both = sum(x == mode and y == mode for x, y in pairs)
        n_a, n_b = a.count(mode), b.count(mode)
        per_class[mode] = {
            "first": n_a,
            "second": n_b,
            "both": both,
            "agreement": round(2 * both / (n_a + n_b), 3) if n_a + n_b else None,
        }
    return {
        "items": len(pairs),
        "raw": round(sum(x == y for x, y in pairs) / len(pairs), 3),
        "kappa": round(float(cohen_kappa_score(a, b)), 3),
        "per_class": per_class,
        "confusion": {"rows": "first", "labels": list(MODES), "matrix": confusion_matrix(a, b, labels=MODES).tolist()},
    }


def write_adjudication(args: argparse.Namespace, pool: dict, first: dict, second: dict, third: dict) -> None:
    """Batches for the third reading: each item whose two readings disagree on the mode, with the two modes
    proposed in a fixed order (S, E, C, I), so the reader cannot tell which reading proposed which."""
    from make_label_pool import display  # the same display as the readings had

    order = list(CODES)
    keys = [k for k in sorted(second) if k not in third and first[k][1]["mode"] != second[k][1]["mode"]]
    batches: list[list[str]] = [[] for _ in range(args.adjudication_batches)]
    for n, key in enumerate(keys):
        proposed = sorted({first[key][1]["mode"][0].upper(), second[key][1]["mode"][0].upper()}, key=order.index)
        row = pool[key]
        batches[n % len(batches)].append(
            f"=== {key} | {row['source']} | proposed: {' or '.join(proposed)} ===\n{display(row['text'])[0]}\n\n"
        )
    (args.dir / "batches").mkdir(exist_ok=True)
    for b, lines in enumerate(batches):
        (args.dir / "batches" / f"{args.round}{b}.txt").write_text("".join(lines), encoding="utf-8")
    print(f"third reading: {len(keys)} disagreements in {len(batches)} batches")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", type=Path, default=Path("data/seci"))
    parser.add_argument("--config", type=Path, default=Path("configs/seci-data.yaml"))
    parser.add_argument(
        "--adjudication-batches",
        type=int,
        default=0,
        help="write this many batches of the disagreements not yet adjudicated (batches/adjudicate-*.txt), then stop",
    )
    parser.add_argument("--round", default="adjudicate-", help="name of the adjudication batch files")
    parser.add_argument(
        "--audit-adjudication-batches",
        type=int,
        default=0,
        help="the same for the audit's disagreements (batches/audit-adjudicate-*.txt), then stop",
    )
    args = parser.parse_args()
    unseen = set(yaml.safe_load(args.config.read_text(encoding="utf-8"))["dev_unseen"])

    pool = {r["key"]: r for r in map(json.loads, (args.dir / "pool.jsonl").read_text(encoding="utf-8").splitlines())}
    first: dict[str, tuple[str, dict]] = {}
    second: dict[str, tuple[str, dict]] = {}
    third: dict[str, tuple[str, dict]] = {}
    audit: dict[str, dict[str, tuple[str, dict]]] = {prefix: {} for prefix in AUDIT}
    for path in sorted(args.dir.glob("labels/*.tsv")):
        name = path.stem
        target = first if name.startswith(FIRST) else second if name.startswith("reread") else None
        target = third if name.startswith("adjudicate") else target
        matched = [prefix for prefix in AUDIT if name.startswith(prefix)]
        target = audit[max(matched, key=len)] if matched else target  # "audit-adjudicate" also starts "audit-a"
        if target is None:
            continue  # second.tsv: the version-2 second pass of 330 dev items, superseded by the rereadings
        for key, label in read_labels(path).items():
            if key in target:
                raise ValueError(f"{key} read twice in one role ({target[key][0]}, {name})")
            target[key] = (name, label)
    orphans = (set(second) | set(third) | set().union(*audit.values())) - set(first)
    if orphans:
        raise ValueError(f"{len(orphans)} later readings of items without a first reading, e.g. {sorted(orphans)[:3]}")

    if args.adjudication_batches:
        write_adjudication(args, pool, first, second, third)
        return
    if args.audit_adjudication_batches:
        args.adjudication_batches, args.round = args.audit_adjudication_batches, "audit-adjudicate-"
        write_adjudication(args, pool, *audit.values())
        return
    for row in pool.values():
        if row["split"] == "train" and row["path"].endswith(MOVE_TO_DEV):
            row["split"] = "dev"

    def version(reader: str) -> int:
        return 3 if reader.startswith(VERSION_3) else 2

    seen: set[str] = set()
    counts: Counter[str] = Counter()
    rows: dict[str, list[dict]] = {"train": [], "dev": [], "dev_in_domain": []}
    rounds = (
        "rounds 1-4: first read under version 2",
        "round 5: new organizations",
        "round 6: internalization",
        "round 7: AMI training teams",
    )
    audit_round = "round 8: audit of AMI tools practice and closing evaluations"
    pairs: dict[str, list[tuple[str, str]]] = {"all": [], **{name: [] for name in (*rounds, audit_round)}}
    pairs.update({f"source {s}": [] for s in ("email", "meeting", "document")})
    # Dev copies first so that they win the de-duplication.
    for key in sorted(first, key=lambda k: (pool[k]["split"] == "train", k)):
        row = pool[key]
        folded = fold(row["text"])
        if folded in seen:
            counts["duplicates dropped"] += 1
            continue
        seen.add(folded)
        readings = [first[key]] + ([second[key]] if key in second else []) + ([third[key]] if key in third else [])
        label, adjudicated = first[key][1], False
        if key in second:
            pair = (first[key][1]["mode"], second[key][1]["mode"])
            pairs["all"].append(pair)
            round_ = int(row["split"] == "new")
            for n, prefix in ((2, "round6-"), (3, "round7-")):
                round_ = n if first[key][0].startswith(prefix) else round_
            pairs[rounds[round_]].append(pair)
            pairs[f"source {row['source']}"].append(pair)
            if pair[0] != pair[1]:
                if key in third:
                    label, adjudicated = third[key][1], True
                    counts["overturned"] += label["mode"] != first[key][1]["mode"]
                else:
                    counts["disagreements not yet adjudicated"] += 1
        audit_a, audit_b, audit_third = (readers.get(key) for readers in audit.values())
        if audit_a and audit_b:
            pairs[audit_round].append((audit_a[1]["mode"], audit_b[1]["mode"]))
            readings += [audit_a, audit_b] + ([audit_third] if audit_third else [])
            before = label["mode"]
            if audit_a[1]["mode"] == audit_b[1]["mode"]:
                label = audit_a[1]
            elif audit_third:
                label, adjudicated = audit_third[1], True
            else:
                counts["audit disagreements not yet adjudicated"] += 1
            counts["audit: label changed"] += label["mode"] != before
        group = group_of(row)
        split = "dev" if group in unseen else "dev_in_domain" if row["split"] == "dev" else "train"
        rows[split].append(
            {
                "id": row["id"],
                "text": row["text"],
                "source": row["source"],
                **label,
                "split": split,
                "group": group,
                "provenance": {
                    "path": row["path"],
                    "team": row["team"],
                    "selection": row["selection"],
                    "shown_shortened": row["shortened"],
                    "key": key,
                    "readings": [{"reader": r, "mode": x["mode"], "guide_version": version(r)} for r, x in readings],
                    "adjudicated": adjudicated,
                },
                "guide_version": max(version(r) for r, _ in readings),
            }
        )
    for split, items in rows.items():
        with (args.dir / f"{split}.jsonl").open("w", encoding="utf-8") as fh:
            for item in sorted(items, key=lambda r: r["id"]):
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
    overlap = {r["group"] for r in rows["train"]} & {r["group"] for r in rows["dev"]}
    if overlap:
        raise ValueError(f"groups in both train and dev-unseen: {sorted(overlap)}")

    report = {name: agreement(p) for name, p in pairs.items()}
    (args.dir / "agreement.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"first readings {len(first)}, second {len(second)}, third {len(third)}; {dict(counts)}")
    for split, items in rows.items():
        modes = Counter(r["mode"] for r in items)
        print(
            f"{split}: {len(items)} items, {len({r['group'] for r in items})} groups; "
            f"modes {[modes[m] for m in MODES]} (S E C I); sources {dict(Counter(r['source'] for r in items))}; "
            f"metaphor {sum(r['metaphor'] for r in items)}; "
            f"adjudicated {sum(r['provenance']['adjudicated'] for r in items)}"
        )
    for name, figures in report.items():
        if figures["items"]:
            per_class = {m[:5]: c["agreement"] for m, c in figures["per_class"].items()}
            print(f"agreement, {name}: {figures['items']} items, raw {figures['raw']}, kappa {figures['kappa']}")
            print(f"  per class {per_class}")


if __name__ == "__main__":
    main()
