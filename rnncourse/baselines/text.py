"""Baselines for text classification that every recurrent model is compared against.

    majority_class_predict   always the most frequent training label
    tfidf_logreg             TF-IDF over word 1- and 2-grams, then logistic regression
    char_ngram_logreg        the same over character n-grams: a bag of characters for Chinese

Both linear models ignore word order beyond two neighbours; on sentiment they are strong, and
a recurrent network has to beat them to earn its cost. They are deterministic (scikit-learn's
lbfgs solver), and train in seconds.
"""

from __future__ import annotations

import warnings

import numpy as np


def majority_class_predict(train_labels, n: int) -> np.ndarray:
    """`n` copies of the most frequent training label (the smallest label on a tie)."""
    train_labels = np.asarray(train_labels)
    if train_labels.ndim != 1 or len(train_labels) == 0:
        raise ValueError(f"train_labels must be a non-empty 1-D array, got shape {train_labels.shape}")
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    values, counts = np.unique(train_labels, return_counts=True)
    return np.full(n, values[np.argmax(counts)], dtype=train_labels.dtype)


def _fit(vectorizer, train_texts, train_labels, C, val_texts=None, val_labels=None):
    """Fit the vectorizer once, then logistic regression for each candidate C; with several
    candidates keep the one with the best validation accuracy (the first on a tie), and warn
    when it is the smallest or the largest of them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if len(train_texts) != len(train_labels):
        raise ValueError(f"train_texts and train_labels must have the same length, "
                         f"got {len(train_texts)} and {len(train_labels)}")
    candidates = tuple(C) if isinstance(C, (tuple, list)) else (C,)
    for c in candidates:
        if isinstance(c, bool) or not (isinstance(c, (int, float)) and c > 0):
            raise ValueError(f"C (inverse regularisation strength) must be a positive number, got {c!r}")
    if len(candidates) > 1 and (val_texts is None or val_labels is None):
        raise ValueError(f"choosing C among {candidates} needs val_texts and val_labels")
    features = vectorizer.fit_transform(list(train_texts))
    val_features = None if val_texts is None else vectorizer.transform(list(val_texts))
    best, scores = None, {}
    for c in candidates:
        clf = LogisticRegression(C=c, solver="lbfgs", max_iter=2000).fit(features, np.asarray(train_labels))
        if val_features is not None:
            scores[c] = float(np.mean(clf.predict(val_features) == np.asarray(val_labels)))
        if best is None or (val_features is not None and scores[c] > scores[best[0]]):
            best = (c, clf)
    model = make_pipeline(vectorizer, best[1])
    model.C_, model.val_accuracy_ = best[0], scores  # what was chosen, and why
    if len(candidates) > 1 and best[0] in (min(candidates), max(candidates)):
        # A choice at the edge of the grid says only that the best C is there or beyond it: a
        # baseline tuned that way may be weaker than it could be, which flatters the models
        # compared with it.
        side = "largest" if best[0] == max(candidates) else "smallest"
        warnings.warn(f"the chosen C = {best[0]:g} is the {side} of the candidates {candidates}; the best C may "
                      f"lie beyond them: try a grid that extends past it", UserWarning, stacklevel=3)
    return model


def tfidf_logreg(train_texts, train_labels, tokenizer, ngram_range=(1, 2), min_df: int = 2, C=4.0,
                 val_texts=None, val_labels=None):
    """A fitted scikit-learn pipeline: TF-IDF (sublinear term frequency) over the n-grams of
    `tokenizer(text)` seen in at least `min_df` training texts, then L2-regularised logistic
    regression (lbfgs). `C` is a number, or a tuple of candidates to choose from by accuracy
    on (`val_texts`, `val_labels`); the choice is in `.C_` and the validation accuracies in
    `.val_accuracy_`, and a UserWarning says when the choice is at either end of the candidates.
    Call `.predict(texts)` or `.predict_proba(texts)` on the result."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectorizer = TfidfVectorizer(tokenizer=tokenizer, token_pattern=None, lowercase=False,
                                 ngram_range=ngram_range, min_df=min_df, sublinear_tf=True, dtype=np.float64)
    return _fit(vectorizer, train_texts, train_labels, C, val_texts, val_labels)


def char_ngram_logreg(train_texts, train_labels, ngram_range=(1, 1), min_df: int = 2, C=4.0,
                      val_texts=None, val_labels=None):
    """`tfidf_logreg` over characters (white space dropped): with ngram_range (1, 1) a bag of
    characters, the natural first baseline for Chinese text, which has no spaces between words."""
    return tfidf_logreg(train_texts, train_labels, tokenizer=_characters, ngram_range=ngram_range,
                        min_df=min_df, C=C, val_texts=val_texts, val_labels=val_labels)


def _characters(text):
    return [c for c in text if not c.isspace()]
