"""Cross-validate the metaphor calibration on the dev file: does it beat one threshold on words it was not fitted on?

    python scripts/calibration_cv.py --model models/seci-fast [--folds 5 --repeats 3]

The calibrator is fitted on VUA-18 val, where the token threshold is chosen too, so val alone cannot say
whether it generalises. This script splits val's sentences into folds; for each, the calibrator is fitted and
its threshold chosen on the other folds, and so is the threshold of the model's own (uncalibrated) scores;
both are then scored on the held-apart fold. It prints the metaphor-class F1 over all held-apart words of each
repeat. The lexical prior and the POS tagger come from the training files, as in training; test is never read.
A model without calibration is loaded as one (its prior, tagger and calibrator are fitted here).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.classify.engine import pick_dtype  # noqa: E402
from pipeline.classify.model import SeciModel, load_config, load_tokenizer, load_weights  # noqa: E402
from pipeline.train.calibrate import dev_words, fit_calibrator, fit_prior_and_tagger  # noqa: E402
from pipeline.train.train import metaphor_sentences  # noqa: E402
from pipeline.train.vua import best_threshold, load_metaphor_file, token_metrics  # noqa: E402

DATA = REPO.parent / "shared/data/metaphor"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--train", type=Path, nargs="+", default=None, help="default: VUA-18 train + VUAMC train")
    parser.add_argument("--dev", type=Path, default=DATA / "vua18_seq/VUA_seq_formatted_val.csv")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    train_files = args.train or [
        DATA / "vua18_seq/VUA_seq_formatted_train.csv",
        DATA / "vua_sharedtask/vuamc_corpus_train.csv",
    ]

    config = load_config(args.model)
    config.metaphor_calibration = True
    model = SeciModel(config)
    state = load_weights(args.model)
    model.load_state_dict({k: v.float() for k, v in state.items()}, strict=False)
    model.eval()
    tokenizer = load_tokenizer(config)
    dtype = pick_dtype(torch.device("cpu"))

    dev = load_metaphor_file(args.dev)
    train = metaphor_sentences([str(f) for f in train_files], dev)
    fit_prior_and_tagger(model, tokenizer, train, dtype)
    words = dev_words(model, tokenizer, dev, train, dtype)
    raw = torch.sigmoid(words.features[:, 0]).numpy()  # the first feature is the model's own logit
    labels = words.labels.numpy().astype(int)
    sentence = words.sentence.numpy()
    print(f"# calibration_cv: {args.model}, {len(dev)} dev sentences, {len(labels)} words, {args.folds} folds")
    print(f"POS tagger accuracy on dev: {words.pos_accuracy:.3f}")

    for repeat in range(args.repeats):
        fold_of = np.random.default_rng(repeat).permutation(len(dev)) % args.folds
        held_out = fold_of[sentence]
        plain_pred, calibrated_pred = np.zeros(len(labels), bool), np.zeros(len(labels), bool)
        for fold in range(args.folds):
            fit, test = held_out != fold, held_out == fold
            threshold = best_threshold([labels[fit].tolist()], [raw[fit].tolist()])
            plain_pred[test] = raw[test] >= threshold
            fit_calibrator(model, words.features[fit], words.labels[fit])
            with torch.no_grad():
                scores = torch.sigmoid(model.calibrator(words.features).squeeze(-1)).numpy()
            threshold = best_threshold([labels[fit].tolist()], [scores[fit].tolist()])
            calibrated_pred[test] = scores[test] >= threshold
        plain, calibrated = plain_pred.astype(float), calibrated_pred.astype(float)
        # token_metrics at 0.5 over 0/1 predictions: the F1 of the decisions made fold by fold.
        a = token_metrics([labels.tolist()], [plain.tolist()], 0.5)
        b = token_metrics([labels.tolist()], [calibrated.tolist()], 0.5)
        print(
            f"repeat {repeat}: one threshold F1 {a['f1']:.4f} (P {a['precision']:.3f} R {a['recall']:.3f}); "
            f"calibrated F1 {b['f1']:.4f} (P {b['precision']:.3f} R {b['recall']:.3f}); "
            f"difference {b['f1'] - a['f1']:+.4f}"
        )


if __name__ == "__main__":
    main()
