"""Chapter 7's GRU and its best network, trained with several seeds, outside the notebook.

Chapter 7 trains each IMDB network once (seed 0) to stay within its few minutes on two cores,
and its best network, a bidirectional LSTM reading the last 400 words, landed at 0.87 on one
machine and 0.88 on another, next to a target of 0.88 and a TF-IDF baseline of 0.906. One run
cannot say where that network usually lands, so this script trains it, and the GRU, with
several seeds, everything else as in the chapter (the same split, vocabulary, lengths, epochs,
learning rates, dropout, batches cut by length, the epoch kept on validation accuracy), and
scores each on the same 5,000 test reviews.

    .venv/bin/python scripts/seed_study_sentiment.py [--models best gru] [--seeds 0 1 2 3 4]
        [--record book/data/sentiment_seeds.json]

One TensorFlow thread with oneDNN off, as in the chapter, so seed 0 reproduces the chapter's
run on the same machine (the chapter names both). --record adds each run to a
JSON list (one entry per model and seed, with the CPU, commit and time), replacing an earlier
entry for the same model and seed; chapter 7 shows the committed file.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Chapter 7's settings (its cells c010 and c014); seed 0 checks that they still match.
VOCAB, MAXLEN, LONG_MAXLEN, BATCH, LEARNING_RATE = 20_000, 200, 400, 128, 3e-3
MODELS = {
    "best": dict(label="bidirectional LSTM(32), mean and max, 400 words", epochs=2, long=True, learning_rate=2e-3,
                 build=dict(kind="bilstm", pooling="mean_max", dropout=0.5)),
    "gru": dict(label="GRU(32)", epochs=2, long=False, learning_rate=LEARNING_RATE,
                build=dict(kind="gru", dropout=0.2)),
}


def cpu_model() -> str:
    """The CPU's model name, and whether it has AVX-512 (the course's two test machines are both
    'AMD EPYC'; AVX-512 is what tells them apart)."""
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    name = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")),
                platform.processor())
    flags = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
    return f"{name} ({'with' if 'avx512f' in flags else 'without'} AVX-512)"


def record(path: Path, entry: dict, key: tuple) -> None:
    """Add `entry`, stamped with the CPU, the commit and the time (UTC), to the JSON list in
    `path`, replacing an earlier entry with the same values of the fields in `key`; the list is
    kept sorted by `key`. Used by this script and by diagnose_charlm_seed.py."""
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    entry = dict(entry, cpu=cpu_model(), commit=commit,
                 date=datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"))
    runs = json.loads(path.read_text()) if path.exists() else []
    runs = [r for r in runs if tuple(r[k] for k in key) != tuple(entry[k] for k in key)] + [entry]
    runs.sort(key=lambda r: tuple(r[k] for k in key))
    path.write_text(json.dumps(runs, indent=1) + "\n")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(MODELS), default=["best", "gru"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--record", type=Path, help="add each run to this JSON file")
    args = parser.parse_args(argv)

    from rnncourse.repro import setup_tensorflow

    keras = setup_tensorflow(seed=0)   # one thread, oneDNN off: as in the chapter

    from rnncourse.data.imdb import WordVocab, encode_padded, load_imdb_split, tokenize
    from rnncourse.keras_models.sentiment import build_classifier, fit_select, predict_proba
    from rnncourse.metrics import classification_report

    split = load_imdb_split()
    tokens = [[tokenize(t) for t in texts] for texts in (split.train_texts, split.val_texts, split.test_texts)]
    vocab = WordVocab(tokens[0], VOCAB)
    inputs = {length: [encode_padded(t, vocab, length) for t in tokens] for length in (MAXLEN, LONG_MAXLEN)}
    for name in args.models:
        spec = MODELS[name]
        X_train, X_val, X_test = inputs[LONG_MAXLEN if spec["long"] else MAXLEN]
        for seed in args.seeds:
            start = time.monotonic()
            keras.utils.set_random_seed(seed)
            model = build_classifier(vocab_size=VOCAB, **spec["build"])
            fit = fit_select(model, X_train, split.train_labels, X_val, split.val_labels, epochs=spec["epochs"],
                             batch_size=BATCH, learning_rate=spec["learning_rate"], seed=seed,
                             label=f"{spec['label']}, seed {seed}", by_length=True)
            pred = (predict_proba(model, X_test, by_length=True) > 0.5).astype(int)
            report = classification_report(split.test_labels, pred, zero_division=0.0)
            seconds = time.monotonic() - start
            print(f"{spec['label']}, seed {seed}: test accuracy {report['accuracy']:.4f}, F1 {report['f1']:.4f}, "
                  f"epoch kept {fit['best_epoch']} (validation accuracy {fit['best_val_accuracy']:.4f}); "
                  f"{seconds:.0f} s", flush=True)
            if args.record:
                record(args.record, dict(
                    model=spec["label"], seed=seed, test_accuracy=round(report["accuracy"], 4),
                    test_f1=round(report["f1"], 4), epoch_kept=fit["best_epoch"],
                    val_accuracy_by_epoch=[round(v, 4) for v in fit["history"]["val_accuracy"]],
                    seconds=round(seconds)), key=("model", "seed"))
            keras.backend.clear_session()
    return 0


if __name__ == "__main__":
    sys.exit(main())
