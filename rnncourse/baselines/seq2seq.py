"""Scores for sequence-to-sequence outputs, and a letter-by-letter baseline for
grapheme-to-phoneme conversion, all in plain Python/NumPy (deterministic on every CPU).

Metrics:

* word accuracy: the fraction of words whose predicted phoneme sequence is exactly right
  (1 - word error rate, WER, as the G2P papers report it);
* phoneme error rate (PER): the total edit distance (insertions + deletions + substitutions,
  each costing 1) between predictions and references, divided by the total number of
  reference phonemes. It can exceed 1 (a prediction full of insertions).

Baseline: English spelling is far from one letter, one sound, but a table of "this letter
usually sounds like this" already gets many phonemes right. The table needs an alignment of
letters to phonemes, which the dictionary does not give; `LetterBaseline` finds one with a
few rounds of hard EM (Viterbi training): every letter emits nothing, one phoneme, or two
phonemes (x -> K S), and each round re-aligns every training word with the counts of the last.
With `context=1` the table is keyed by the letter and its two neighbours, backing off to the
letter alone for unseen triples.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict

import numpy as np


# ------------------------------------------------------------------------------ metrics


def edit_distance(ref, hyp) -> int:
    """Levenshtein distance between two sequences (insertion, deletion, substitution cost 1)."""
    ref, hyp = list(ref), list(hyp)
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def _check_pairs(refs, hyps):
    refs, hyps = list(refs), list(hyps)
    if len(refs) != len(hyps):
        raise ValueError(f"refs and hyps must have the same length, got {len(refs)} and {len(hyps)}")
    if not refs:
        raise ValueError("refs is empty: nothing to score")
    return refs, hyps


def word_accuracy(refs, hyps) -> float:
    """Fraction of exactly right sequences."""
    refs, hyps = _check_pairs(refs, hyps)
    return sum(tuple(r) == tuple(h) for r, h in zip(refs, hyps)) / len(refs)


def phoneme_error_rate(refs, hyps) -> float:
    """Total edit distance / total reference length."""
    refs, hyps = _check_pairs(refs, hyps)
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("the references hold no phonemes: the phoneme error rate is undefined")
    return sum(edit_distance(r, h) for r, h in zip(refs, hyps)) / total


# ------------------------------------------------------------------------------ baseline

_EPS = ()  # a letter that emits no phoneme (silent e)


def _units(phones):
    """The units a letter may emit at position j of `phones`: (), (p,), (p, q)."""
    return phones


def _align(word, phones, logp):
    """Best alignment of letters to (), one or two phonemes under scores logp[(letter, unit)]."""
    n, m = len(word), len(phones)
    best = [[-math.inf] * (m + 1) for _ in range(n + 1)]
    back = [[None] * (m + 1) for _ in range(n + 1)]
    best[0][0] = 0.0
    for i in range(1, n + 1):
        letter = word[i - 1]
        table = logp.get(letter, {})
        floor = table.get(None, -20.0)
        for j in range(0, m + 1):
            for width in (0, 1, 2):
                if j - width < 0 or best[i - 1][j - width] == -math.inf:
                    continue
                unit = tuple(phones[j - width:j])
                s = best[i - 1][j - width] + table.get(unit, floor)
                if s > best[i][j]:
                    best[i][j], back[i][j] = s, width
    if best[n][m] == -math.inf:
        return None
    units, j = [], m
    for i in range(n, 0, -1):
        width = back[i][j]
        units.append(tuple(phones[j - width:j]))
        j -= width
    return units[::-1]


def _to_logp(counts, smoothing=0.1):
    out = {}
    for letter, c in counts.items():
        total = sum(c.values()) + smoothing * (len(c) + 1)
        out[letter] = {u: math.log((k + smoothing) / total) for u, k in c.items()}
        out[letter][None] = math.log(smoothing / total)  # any unit not seen with this letter
    return out


def align_letters(pairs, rounds: int = 3):
    """Hard-EM alignment of every (word, phonemes) pair: a list of per-letter units (or None)."""
    # start: a letter emits one phoneme by default, nothing or two less often
    counts = defaultdict(Counter)
    for word, phones in pairs:
        if len(word) == len(phones):
            for letter, p in zip(word, phones):
                counts[letter][(p,)] += 1
    for letter in list(counts):
        counts[letter][_EPS] += 1
    alignments = []
    for _ in range(rounds):
        logp = _to_logp(counts)
        alignments = [_align(w, p, logp) for w, p in pairs]
        counts = defaultdict(Counter)
        for (word, _), units in zip(pairs, alignments):
            if units is not None:
                for letter, u in zip(word, units):
                    counts[letter][u] += 1
    return alignments


class LetterBaseline:
    """Letter-by-letter prediction: each letter emits its most frequent aligned unit.

    `context=0`: keyed by the letter alone. `context=1`: by (previous, letter, next), with
    '#' at the word's edges, backing off to the letter alone if the triple was seen fewer
    than `min_count` times in training.
    """

    def __init__(self, context: int = 0, rounds: int = 3, min_count: int = 2):
        if context not in (0, 1):
            raise ValueError(f"context must be 0 or 1, got {context!r}")
        self.context, self.rounds, self.min_count = context, rounds, min_count

    @staticmethod
    def _keys(word):
        padded = f"#{word}#"
        return [padded[i:i + 3] for i in range(len(word))]

    def fit(self, pairs) -> "LetterBaseline":
        pairs = list(pairs)
        alignments = align_letters(pairs, self.rounds)
        single, triple = defaultdict(Counter), defaultdict(Counter)
        self.aligned = 0
        for (word, _), units in zip(pairs, alignments):
            if units is None:
                continue
            self.aligned += 1
            for letter, key, u in zip(word, self._keys(word), units):
                single[letter][u] += 1
                triple[key][u] += 1
        # most frequent unit; ties broken by the unit's text, so the table is the same everywhere
        pick = lambda c: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0]  # noqa: E731
        self.single = {k: pick(c) for k, c in single.items()}
        self.triple = {k: pick(c) for k, c in triple.items() if sum(c.values()) >= self.min_count}
        return self

    def predict_word(self, word) -> tuple[str, ...]:
        out = []
        for letter, key in zip(word, self._keys(word)):
            unit = self.triple.get(key) if self.context else None
            if unit is None:
                unit = self.single.get(letter, _EPS)
            out.extend(unit)
        return tuple(out)

    def predict(self, words) -> list[tuple[str, ...]]:
        return [self.predict_word(w) for w in words]


def scores_by_length(words, refs, hyps, bins) -> list[tuple[str, int, float, float]]:
    """(label, count, word accuracy, PER) for words whose letter count falls in each bin.

    `bins`: a list of (low, high) inclusive ranges of word lengths.
    """
    refs, hyps = _check_pairs(refs, hyps)
    out = []
    for low, high in bins:
        idx = [i for i, w in enumerate(words) if low <= len(w) <= high]
        if not idx:
            raise ValueError(f"no word has {low}..{high} letters")
        r, h = [refs[i] for i in idx], [hyps[i] for i in idx]
        out.append((f"{low}-{high}" if low != high else str(low), len(idx), word_accuracy(r, h), phoneme_error_rate(r, h)))
    return out


def per_position_accuracy(refs, hyps, positions: int) -> np.ndarray:
    """Accuracy at each position t < `positions` over the words whose reference is longer than t:
    hyp[t] == ref[t] (a position the prediction does not reach counts as wrong)."""
    refs, hyps = _check_pairs(refs, hyps)
    acc = np.full(positions, np.nan)
    for t in range(positions):
        rows = [(r, h) for r, h in zip(refs, hyps) if len(r) > t]
        if rows:
            acc[t] = np.mean([len(h) > t and h[t] == r[t] for r, h in rows])
    return acc
