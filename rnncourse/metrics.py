"""Classification metrics, defined once and checked: confusion matrix, accuracy, precision,
recall, F1.

For a binary classifier with positive label 1, count over the evaluated examples

    TP  predicted 1, truly 1        FP  predicted 1, truly 0
    FN  predicted 0, truly 1        TN  predicted 0, truly 0

    accuracy  = (TP + TN) / (TP + FP + FN + TN)   the share of all predictions that are right
    precision = TP / (TP + FP)                     of the examples predicted positive, the share truly positive
    recall    = TP / (TP + FN)                     of the truly positive examples, the share found
    F1        = 2 precision recall / (precision + recall)   their harmonic mean

Precision and recall have different denominators (the predicted positives, the actual
positives); they are not two names for accuracy. Precision is undefined when nothing is
predicted positive, recall when nothing is truly positive: the functions raise unless
`zero_division` says what to return then.
"""

from __future__ import annotations

import numpy as np


def _pair(y_true, y_pred):
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.ndim != 1:
            raise ValueError(f"{name} must be a 1-D array of 0/1 labels, got shape {y.shape}")
        if y.dtype.kind not in "biu" and not (y.dtype.kind == "f" and np.all(np.isin(y, (0.0, 1.0)))):
            raise TypeError(f"{name} must hold 0/1 labels (integers or bools), got dtype {y.dtype}; "
                            "threshold probabilities first, e.g. (p > 0.5).astype(int)")
        if not np.all(np.isin(y, (0, 1))):
            bad = np.unique(y[~np.isin(y, (0, 1))])[:5]
            raise ValueError(f"{name} must hold only the labels 0 and 1, got {bad.tolist()}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true and y_pred must have the same length, got {len(y_true)} and {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("y_true and y_pred are empty: there is nothing to evaluate")
    return y_true.astype(np.int64), y_pred.astype(np.int64)


def confusion_matrix(y_true, y_pred) -> np.ndarray:
    """2 x 2 int64 counts: row = true label, column = predicted label (0 then 1),
    i.e. [[TN, FP], [FN, TP]] (scikit-learn's layout)."""
    y_true, y_pred = _pair(y_true, y_pred)
    return np.bincount(2 * y_true + y_pred, minlength=4).reshape(2, 2)


def accuracy(y_true, y_pred) -> float:
    """(TP + TN) / all."""
    y_true, y_pred = _pair(y_true, y_pred)
    return float(np.mean(y_true == y_pred))


def _ratio(num, den, what, zero_division):
    if den == 0:
        if zero_division is None:
            raise ZeroDivisionError(f"{what} is undefined here; pass zero_division=<value> to return a value instead")
        return float(zero_division)
    return float(num / den)


def precision(y_true, y_pred, zero_division=None) -> float:
    """TP / (TP + FP): of the examples predicted positive, the share that truly are."""
    (_, fp), (_, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(tp, tp + fp, "precision (no example was predicted positive)", zero_division)


def recall(y_true, y_pred, zero_division=None) -> float:
    """TP / (TP + FN): of the truly positive examples, the share predicted positive."""
    (_, _), (fn, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(tp, tp + fn, "recall (no example is truly positive)", zero_division)


def f1_score(y_true, y_pred, zero_division=None) -> float:
    """2 TP / (2 TP + FP + FN), the harmonic mean of precision and recall."""
    (_, fp), (fn, tp) = confusion_matrix(y_true, y_pred)
    return _ratio(2 * tp, 2 * tp + fp + fn, "F1 (no positive example, predicted or true)", zero_division)


def classification_report(y_true, y_pred, zero_division=None) -> dict:
    """{'accuracy', 'precision', 'recall', 'f1'} for the positive label 1."""
    return {"accuracy": accuracy(y_true, y_pred), "precision": precision(y_true, y_pred, zero_division),
            "recall": recall(y_true, y_pred, zero_division), "f1": f1_score(y_true, y_pred, zero_division)}
