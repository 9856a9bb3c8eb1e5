"""Select the items our SECI data set labels, from the train and dev parts of ../shared/data only.

Programs select, people label: this script never assigns a mode. It ingests the train and dev
parts with the project's own ingestors (heldout files are never passed to them, except Enron,
where the split is a header and heldout mailboxes are dropped unread by anyone), then draws:

- a random sample per split and source (the natural distribution), and
- keyword-selected candidates for the rare modes, socialization and internalization, which the
  guide's signals suggest (e.g. "coffee", "great to see"; "I tried", "pilot", "practice").

Each candidate records how it was selected. Output: `data/seci/pool.jsonl` (the items) and the
labelling batches under `data/seci/batches/` (ids and text, nothing else).

    python scripts/make_label_pool.py --shared ../shared/data
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from pathlib import Path

import numpy as np

from pipeline.ingest import IngestOptions, ingest
from pipeline.items import Item

HELDOUT_MAILBOXES = {"KAMINSKI-V", "SKILLING-J", "SANDERS-R", "HAIN-M", "HORTON-S", "HAYSLETT-R"}
DEV_MAILBOXES = {"DASOVICH-J"}
MRDA_HELDOUT = {"Bed003", "Bed008", "Bed016", "Bmr006", "Bmr014", "Bmr023", "Bro004", "Bro019", "Bro027"}
MRDA_DEV = {"Bed002", "Bed010", "Bed015", "Bmr005", "Bmr012", "Bmr026", "Bro005", "Bro011"}

SOCIALIZATION = re.compile(
    r"\b(coffee|lunch|dinner|drinks?|beer|great to see|good to see|nice to meet|come (by|over|and see)|stop by|"
    r"catch up|get together|in person|site visit|visit(ed|ing)? (the|our|their)|tour|shadow|sit with|feel(ing)?|felt|"
    r"congratulations|welcome|sorry to hear|hope you|family|weekend|birthday|party|fun|miss you|thank you so much|"
    r"appreciate|chat)\b",
    re.I,
)
INTERNALIZATION = re.compile(
    r"\b(i tried|we tried|tried (it|out|to use)|trying (it|out)|tested|testing|practi[cs]e|hands-on|training|"
    r"exercise|learn(ed|t|ing)|experiment(ed|ing)?|pilot|prototype|trial|walk ?through|figured out|"
    r"now (i|we) (understand|see)|got it (to )?work|played (around )?with|ran (the|it|a)|when (i|we) used|"
    r"following the (manual|guide|instructions|steps)|tutorial|onboarding|dry run|simulation)\b",
    re.I,
)

# (split, source) -> (random, socialization keyword, internalization keyword) draws
PLAN = {
    ("train", "email"): (480, 150, 110),
    ("train", "meeting"): (700, 160, 260),
    ("train", "document"): (640, 60, 170),
    ("dev", "email"): (120, 15, 15),
    ("dev", "meeting"): (230, 35, 45),
    ("dev", "document"): (200, 15, 30),
}
DISPLAY_WORDS = 450  # longer items are shown as head and tail, marked as shortened


def split_of(item: Item, shared: Path) -> str:
    path = Path(item.path)
    rel = path.resolve().relative_to(shared.resolve()).as_posix()
    if rel.startswith("meetings/qmsum/ALL/"):
        return {"train": "train", "val": "dev", "test": "heldout"}[rel.split("/")[3]]
    if rel.startswith("meetings/icsi_mrda/"):
        meeting = path.stem
        return "heldout" if meeting in MRDA_HELDOUT else "dev" if meeting in MRDA_DEV else "train"
    if rel.startswith("emails/enron_berkeley_categories/"):
        origin = (item.meta.get("x_origin") or "").upper()
        return "heldout" if origin in HELDOUT_MAILBOXES else "dev" if origin in DEV_MAILBOXES else "train"
    if rel.startswith(("documents/python_peps/", "documents/rust_rfcs/")):
        number = item.meta.get("pep") or item.meta.get("rfc") or ""
        if not number.isdigit():
            return "train"
        return {"7": "heldout", "3": "dev"}.get(number[-1], "train")
    if rel.startswith("documents/nodejs_tsc/"):
        if "governance_docs" in rel:
            return "train"
        year = int(path.stem[:4]) if path.stem[:4].isdigit() else 0
        return "heldout" if year >= 2025 else "dev" if year == 2024 else "train"
    if rel.startswith("documents/google_eng_practices/"):
        return "train"
    return "heldout"  # mybinder, httpwg and anything unknown: never labelled


def inputs(shared: Path) -> list[Path]:
    """The train and dev inputs; heldout meeting and document files are not even read."""
    q = shared / "meetings/qmsum/ALL"
    mrda = shared / "meetings/icsi_mrda/database"
    keep_mrda = [p for p in sorted(mrda.glob("*.dadb")) if p.stem not in MRDA_HELDOUT]
    return [
        q / "train",
        q / "val",
        *keep_mrda,
        shared / "emails/enron_berkeley_categories/enron_with_categories",
        shared / "documents/python_peps/peps",
        shared / "documents/rust_rfcs/text",
        shared / "documents/nodejs_tsc",
        shared / "documents/google_eng_practices/review",
    ]


def display(text: str) -> tuple[str, bool]:
    words = text.split()
    if len(words) <= DISPLAY_WORDS:
        return text, False
    head = " ".join(words[:360])
    tail = " ".join(words[-70:])
    return f"{head}\n[... {len(words) - 430} words not shown ...]\n{tail}", True


def collect(shared: Path) -> dict[tuple[str, str], list[Item]]:
    """The train and dev items worth labelling, by (split, source)."""
    pools: dict[tuple[str, str], list[Item]] = {}
    for record in ingest(inputs(shared), IngestOptions()):
        if not isinstance(record, Item) or record.source not in ("email", "meeting", "document"):
            continue
        if len(record.text.split()) < 15:
            continue  # nothing to label
        split = split_of(record, shared)
        if split != "heldout":
            pools.setdefault((split, record.source), []).append(record)
    return pools


def pool_row(key: str, item: Item, split: str, how: str, shared: Path) -> dict:
    return {
        "key": key,
        "id": item.id,
        "split": split,
        "source": item.source,
        "selection": how,
        "path": str(Path(item.path).resolve().relative_to(shared.resolve().parent)),
        "team": item.team,
        "text": item.text,
        "shortened": display(item.text)[1],
    }


def write_batch(path: Path, rows: list[dict]) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(f"=== {row['key']} | {row['source']} ===\n{display(row['text'])[0]}\n\n")


def extend(args: argparse.Namespace) -> None:
    """A second round for the rare modes: a TF-IDF + logistic regression model trained on the labels
    so far ranks the unlabelled *train* items by P(socialization) and P(internalization); the top of
    each ranking (a few per team, for variety) is sent for labelling. The model only selects. Items of the
    groups `configs/seci-data.yaml` holds out as dev-unseen are never drawn: new labels there would not train."""
    import yaml
    from build_seci_data import group_of
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    labelled = [json.loads(line) for line in (args.out / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    ranker = make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=0),
    )
    ranker.fit([r["text"] for r in labelled], [r["mode"] for r in labelled])
    existing = [json.loads(line) for line in (args.out / "pool.jsonl").read_text(encoding="utf-8").splitlines()]
    taken = {r["id"] for r in existing}
    candidates = [i for (split, _), items in collect(args.shared).items() if split == "train" for i in items]
    unseen = set(yaml.safe_load(args.split_config.read_text(encoding="utf-8"))["dev_unseen"])
    candidates = [i for i in candidates if group_of(pool_row("", i, "train", "", args.shared)) not in unseen]
    if args.extend_teams:
        candidates = [i for i in candidates if i.team in args.extend_teams]
    candidates = sorted((i for i in candidates if i.id not in taken), key=lambda i: i.id)
    proba = ranker.predict_proba([i.text for i in candidates])
    classes = list(ranker.classes_)
    regex = PATTERNS.get(args.extend_pattern, args.extend_pattern)
    pattern = re.compile(regex, re.I) if regex else None
    # With a pattern, items rank by how many of its cues they hold first, by the ranker second.
    cues = np.array([len(pattern.findall(i.text)) if pattern else 0 for i in candidates])
    chosen: dict[str, tuple[Item, str]] = {}
    for mode in args.extend_modes:
        order = np.lexsort((-proba[:, classes.index(mode)], -cues))
        per_team: Counter[str] = Counter()
        n = 0
        for idx in order:
            item = candidates[idx]
            if item.id in chosen or per_team[item.team or ""] >= args.per_team:
                continue
            chosen[item.id] = (item, f"pattern+tfidf-{mode}" if pattern else f"model:tfidf-{mode}")
            per_team[item.team or ""] += 1
            n += 1
            if n >= args.extend:
                break
    start = len(existing)
    new_rows = [
        pool_row(f"k{start + n:04d}", item, "train", how, args.shared)
        for n, (item, how) in enumerate(sorted(chosen.values(), key=lambda c: c[0].id))
    ]
    with (args.out / "pool.jsonl").open("a", encoding="utf-8") as fh:
        for row in new_rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    rng = random.Random(args.seed + 1)
    rng.shuffle(new_rows)
    for b in range(args.batches):
        write_batch(args.out / "batches" / f"{args.round}{b}.txt", new_rows[b :: args.batches])
    print("extension:", Counter(r["selection"] for r in new_rows), "from", len(candidates), "unlabelled train items")


# Cues of learning by doing in the AMI design meetings (round 7): tool training, trying the prototype.
PATTERNS = {
    "hands-on": r"\b(tool training|smart ?boards?|white ?boards?|digital pen|pens?|draw(ing|n)?|"
    r"try(ing)? (it|this|that)|tried|press(ing)?|prototype|play(ing)? (with|around)|practi[cs]e|"
    r"learn(ed|t|ing)?|hang of|figured? out how|getting used|hands-on|experience)\b"
}

FIGURATIVE = re.compile(
    r"\b(like an? |as if|as though|think of (it|this|that|them|us|\w+) as|imagine|akin to|analog(y|ous)|"
    r"metaphor|equivalent of|reminds? me of|(kind|sort) of an? |is (just )?an? \w+ (of|for) )",
    re.I,
)


def extend_metaphor(args: argparse.Namespace) -> None:
    """A third round for the item-level metaphor flag, whose dev positives were few: unlabelled *dev*
    items that match a simile or analogy pattern. The pattern only selects; people label."""
    existing = [json.loads(line) for line in (args.out / "pool.jsonl").read_text(encoding="utf-8").splitlines()]
    taken = {r["id"] for r in existing}
    candidates = [i for (split, _), items in collect(args.shared).items() if split == "dev" for i in items]
    candidates = sorted((i for i in candidates if i.id not in taken and FIGURATIVE.search(i.text)), key=lambda i: i.id)
    rng = random.Random(args.seed + 2)
    chosen = rng.sample(candidates, min(args.extend_metaphor, len(candidates)))
    start = len(existing)
    new_rows = [
        pool_row(f"k{start + n:04d}", item, "dev", "pattern:figurative", args.shared)
        for n, item in enumerate(sorted(chosen, key=lambda i: i.id))
    ]
    with (args.out / "pool.jsonl").open("a", encoding="utf-8") as fh:
        for row in new_rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    rng.shuffle(new_rows)
    for b in range(args.batches):
        write_batch(args.out / "batches" / f"figurative{b}.txt", new_rows[b :: args.batches])
    print("metaphor extension:", len(new_rows), "of", len(candidates), "matching dev items")


NEW_SOURCES_PLAN = {  # (converted JSONL or folder, random, socialization keyword, internalization keyword)
    "clinton": (400, 160, 80),
    "enron-pst": (300, 100, 80),
    "18f": (320, 40, 140),
}


def new_source_items(args: argparse.Namespace) -> dict[str, list[Item]]:
    """The items of the three sources added in December 2026 (all train or dev: their held-out parts are not
    in ../shared). The two mail sets are read from `scripts/convert_mail_exports.py`'s JSONL (bulk mail of
    the Enron PST set left out); the handbook by the document reader, a team per section."""
    out: dict[str, list[Item]] = {}
    for name, path in (("clinton", args.clinton), ("enron-pst", args.enron_pst)):
        rows = {r["id"]: r for r in map(json.loads, path.read_text(encoding="utf-8").splitlines())}
        out[name] = []
        for item in ingest([path], IngestOptions()):
            if isinstance(item, Item) and not rows[item.id].get("bulk"):
                item.path = rows[item.id]["path"]  # the original message file, not the converted JSONL
                out[name].append(item)
    handbook = args.shared / "documents/tts_18f_handbook/pages"
    out["18f"] = [i for i in ingest([handbook], IngestOptions()) if isinstance(i, Item)]
    return out


def new_sources(args: argparse.Namespace) -> None:
    """Round 5: organizations not yet in data/seci (State Department mail, nine Enron PST mailboxes, the 18F
    handbook), random and keyword-selected for the rare modes. Which part is train or dev is decided later,
    by whole groups (build_seci_data.py), so the pool rows carry their group."""
    existing = [json.loads(line) for line in (args.out / "pool.jsonl").read_text(encoding="utf-8").splitlines()]
    seen = {re.sub(r"\s+", " ", r["text"]).strip().lower() for r in existing}
    rng = random.Random(args.seed + 5)
    chosen: list[tuple[Item, str, str]] = []
    for name, items in new_source_items(args).items():
        n_random, n_soc, n_int = NEW_SOURCES_PLAN[name]
        pool = []
        for item in sorted(items, key=lambda i: i.id):
            folded = re.sub(r"\s+", " ", item.text).strip().lower()
            if len(item.text.split()) >= 15 and folded not in seen:
                seen.add(folded)
                pool.append(item)
        rng.shuffle(pool)
        taken: set[str] = set()
        for item in pool[:n_random]:
            chosen.append((item, name, "random"))
            taken.add(item.id)
        for pattern, n, mode in ((SOCIALIZATION, n_soc, "socialization"), (INTERNALIZATION, n_int, "internalization")):
            matches = [i for i in pool if i.id not in taken and pattern.search(i.text)][:n]
            chosen.extend((item, name, f"keyword:{mode}") for item in matches)
            taken.update(i.id for i in matches)
        print(name, len(items), "items,", len(pool), "labellable;", len(taken), "chosen")
    start = len(existing)
    new_rows = []
    for n, (item, name, how) in enumerate(sorted(chosen, key=lambda c: c[0].id)):
        row = pool_row(f"k{start + n:04d}", item, "new", how, args.shared)
        row["team"] = item.team if name != "18f" else item.team or "18f"
        row["group"] = row["team"] if row["team"].startswith(f"{name}:") else f"{name}:{row['team']}"
        new_rows.append(row)
    with (args.out / "pool.jsonl").open("a", encoding="utf-8") as fh:
        for row in new_rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    rng.shuffle(new_rows)
    for b in range(args.batches):
        write_batch(args.out / "batches" / f"{args.round}{b}.txt", new_rows[b :: args.batches])
    print("round 5:", len(new_rows), Counter((r["group"].split(":")[0], r["selection"]) for r in new_rows))


def reread(args: argparse.Namespace) -> None:
    """Batches for a blind second reading: every item first read as socialization or internalization and a
    random share of the others, in a new order, text only (the reader sees no label). The first readings are
    the label files given with --reread-labels. (The second readings of rounds 1 to 4 were drawn the same way
    from the de-duplicated items of data/seci/{train,dev}.jsonl as they were at commit 906fd91.)"""
    codes = {"S": "socialization", "I": "internalization"}
    first = {}
    for path in args.reread_labels or []:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                key, mode = line.split("\t")[:2]
                first[key] = codes.get(mode, mode)
    pool = {r["key"]: r for r in map(json.loads, (args.out / "pool.jsonl").open(encoding="utf-8"))}
    rng = random.Random(args.seed + 6)
    rows = [
        pool[key]
        for key in sorted(first)
        if first[key] in ("socialization", "internalization") or rng.random() < args.reread_share
    ]
    rng.shuffle(rows)
    for b in range(args.batches):
        write_batch(args.out / "batches" / f"{args.round}{b}.txt", rows[b :: args.batches])
    print("second reading:", len(rows), "items in", args.batches, "batches")


# Round 8, a consistency audit. AMI's kick-off meeting (letter a) has the team practise the room's tools and its
# closing meeting (d) evaluates the product and the process, tools included; readers labelled these passages
# internalization in 27 of 95 dev-unseen items but 7 of 83 training items. Selected by text and meeting alone.
AUDIT_TOOLS = re.compile(
    r"white ?board|smart.?board|digital pen|\bpens?\b|\bdraw|drawing|\bmarker|laptop|power ?point|calibrat|"
    r"favou?rite animal|eraser|erase",
    re.I,
)
AUDIT_EVALUATION = re.compile(
    r"leadership|team ?work|creativity|the means|satisf|room for improvement|new ideas|\bprocess\b|evaluat|"
    r"how did (it|we|the meeting)|went well|pleased|the tools|cooperat",
    re.I,
)


def in_audit(row: dict) -> bool:
    """An AMI segment of the tools practice in a kick-off meeting or of a closing meeting's evaluation."""
    match = re.search(r"[EIT]S\d{4}([a-d])\.json#seg\d+$", row["id"])
    if not match:
        return False
    tools, evaluation = len(AUDIT_TOOLS.findall(row["text"])), len(AUDIT_EVALUATION.findall(row["text"]))
    return (match.group(1) == "a" and tools >= 3) or (match.group(1) == "d" and (evaluation >= 2 or tools >= 3))


def audit(args: argparse.Namespace) -> None:
    """Round 8: two new blind readings of every labelled item `in_audit` selects, train and dev-unseen alike,
    each reading in its own order and batches (`{round}a*` and `{round}b*`), text only."""
    labelled = set()
    for name in ("train", "dev", "dev_in_domain"):
        for line in (args.out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines():
            labelled.add(json.loads(line)["provenance"]["key"])
    pool = [r for r in map(json.loads, (args.out / "pool.jsonl").open(encoding="utf-8")) if r["key"] in labelled]
    rows = sorted((r for r in pool if in_audit(r)), key=lambda r: r["key"])
    (args.out / "batches").mkdir(exist_ok=True)
    for reading in ("a", "b"):
        order = rows[:]
        random.Random(f"{args.seed}-audit-{reading}").shuffle(order)
        for b in range(args.batches):
            write_batch(args.out / "batches" / f"{args.round}{reading}{b}.txt", order[b :: args.batches])
    print("audit:", len(rows), "items,", args.batches, "batches per reading")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("data/seci"))
    parser.add_argument("--seed", type=int, default=20261128)
    parser.add_argument("--batches", type=int, default=5)
    parser.add_argument("--second", type=int, default=330, help="dev items labelled a second time, blind")
    parser.add_argument("--extend", type=int, default=0, help="second round: this many candidates per rare mode")
    parser.add_argument(
        "--extend-modes", nargs="+", default=["socialization", "internalization"], help="the rare modes to rank for"
    )
    parser.add_argument("--extend-teams", nargs="+", help="draw only from these teams (e.g. the ICSI series)")
    parser.add_argument(
        "--extend-pattern", help="rank by the matches of this regex (or a PATTERNS name) an item holds, then the model"
    )
    parser.add_argument("--split-config", type=Path, default=Path("configs/seci-data.yaml"))
    parser.add_argument("--per-team", type=int, default=12, help="second round: at most this many per team")
    parser.add_argument("--round", default="extra", help="name of a rare-mode round's batch files (extra: round 2)")
    parser.add_argument("--extend-metaphor", type=int, default=0, help="third round: dev items with figurative cues")
    parser.add_argument("--new-sources", action="store_true", help="round 5: the sources added in December 2026")
    parser.add_argument("--clinton", type=Path, help="round 5: convert_mail_exports.py clinton output")
    parser.add_argument("--enron-pst", type=Path, help="round 5: convert_mail_exports.py enron-pst output")
    parser.add_argument("--reread", action="store_true", help="batches for a blind second reading")
    parser.add_argument("--reread-share", type=float, default=0.16, help="share of E and C items read again")
    parser.add_argument("--reread-labels", type=Path, nargs="+", help="first readings (label files) to read again")
    parser.add_argument("--audit", action="store_true", help="round 8: the AMI tools and evaluation audit")
    args = parser.parse_args()
    if args.audit:
        audit(args)
        return
    if args.new_sources:
        new_sources(args)
        return
    if args.reread:
        reread(args)
        return
    if args.extend_metaphor:
        extend_metaphor(args)
        return
    if args.extend:
        extend(args)
        return

    pools = collect(args.shared)

    rng = random.Random(args.seed)
    chosen: dict[str, tuple[Item, str, str]] = {}
    for (split, source), (n_random, n_soc, n_int) in PLAN.items():
        pool = sorted(pools.get((split, source), []), key=lambda i: i.id)
        rng.shuffle(pool)
        for item in pool[:n_random]:
            chosen.setdefault(item.id, (item, split, "random"))
        for pattern, n, name in ((SOCIALIZATION, n_soc, "socialization"), (INTERNALIZATION, n_int, "internalization")):
            matches = [i for i in pool if i.id not in chosen and pattern.search(i.text)]
            for item in matches[:n]:
                chosen[item.id] = (item, split, f"keyword:{name}")

    args.out.mkdir(parents=True, exist_ok=True)
    rows = [
        pool_row(f"k{n:04d}", item, split, how, args.shared)
        for n, (item, split, how) in enumerate(sorted(chosen.values(), key=lambda c: c[0].id))
    ]
    with (args.out / "pool.jsonl").open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    # Labelling batches: interleave sources so each labeller sees every kind of item.
    order = rows[:]
    rng.shuffle(order)
    batch_dir = args.out / "batches"
    batch_dir.mkdir(exist_ok=True)
    for b in range(args.batches):
        write_batch(batch_dir / f"batch{b}.txt", order[b :: args.batches])
    # The blind second pass: a random subset of dev, in its own order, in its own file.
    dev = [r for r in rows if r["split"] == "dev"]
    second = rng.sample(dev, min(args.second, len(dev)))
    write_batch(batch_dir / "second.txt", second)
    counts = Counter((r["split"], r["source"], r["selection"]) for r in rows)
    for key, n in sorted(counts.items()):
        print(*key, n, sep="\t")
    print("total", len(rows), "pool sizes", {f"{k[0]}/{k[1]}": len(v) for k, v in pools.items()})


if __name__ == "__main__":
    main()
