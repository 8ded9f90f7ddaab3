"""Fixed splits of the Shakespeare text by play, so that a chapter, an exercise and a reader
all train and evaluate on the same characters.

The split is the one chapter 3 uses: *Hamlet* is held out entirely and the other 37 plays are
the training text. Holding out a whole play (rather than every tenth line) keeps the
evaluation honest: no speech, scene or running joke of the held-out text was seen in training.
There is nothing random in it, so there is no seed to state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .shakespeare import CharVocab, load_shakespeare, shakespeare_play_names


@dataclass(frozen=True)
class PlaySplit:
    """Training and held-out text, their ids under one shared vocabulary, and the play names."""

    train_plays: tuple[str, ...]
    held_out_plays: tuple[str, ...]
    vocab: CharVocab
    train_ids: np.ndarray
    held_out_ids: np.ndarray

    def __repr__(self) -> str:
        return (f"PlaySplit({len(self.train_plays)} training plays, {len(self.train_ids):,} characters; "
                f"held out {', '.join(self.held_out_plays)}, {len(self.held_out_ids):,} characters; "
                f"V = {self.vocab.size})")


def split_by_play(held_out=("hamlet",), train=None) -> PlaySplit:
    """Hold out whole plays; train on the others (or on the plays named in `train`).

    The vocabulary is built from the training *and* held-out text, as in chapter 3, so that
    every held-out character has an id; a character that never occurs in training then simply
    has a count of zero (see `unseen_characters`).
    """
    if isinstance(held_out, str):
        raise TypeError(f"held_out must be a list or tuple of play names, got the string {held_out!r}")
    names = shakespeare_play_names()
    held_out = tuple(held_out)
    unknown = [p for p in held_out if p not in names]
    if not held_out or unknown:
        raise ValueError(f"held_out must name at least one play of {names}; got {list(held_out)}")
    if train is None:
        train = tuple(p for p in names if p not in held_out)
    else:
        if isinstance(train, str):
            raise TypeError(f"train must be a list or tuple of play names, got the string {train!r}")
        train = tuple(train)
        unknown = [p for p in train if p not in names]
        if not train or unknown:
            raise ValueError(f"train must name at least one play of {names}; got {list(train)}")
    overlap = sorted(set(train) & set(held_out))
    if overlap:
        raise ValueError(f"a play cannot be both trained on and held out: {overlap}")
    train_text, held_out_text = load_shakespeare(train), load_shakespeare(held_out)
    vocab = CharVocab.from_text(train_text + held_out_text)
    return PlaySplit(train, held_out, vocab, vocab.encode(train_text), vocab.encode(held_out_text))


def unseen_characters(split: PlaySplit) -> list[str]:
    """Characters of the held-out text that never occur in the training text."""
    seen = set(np.unique(split.train_ids).tolist())
    return [split.vocab.chars[i] for i in np.unique(split.held_out_ids) if int(i) not in seen]


def whole_windows(ids: np.ndarray, batch_size: int, seq_len: int) -> np.ndarray:
    """The longest prefix of `ids` that `stream_batches(prefix, batch_size, seq_len)` uses entirely.

    Its length is 1 + batch_size * seq_len * k: every character after the first is a target
    exactly once, so a network scored on these windows and a count model scored on the same
    prefix predict exactly the same characters.
    """
    if not isinstance(ids, np.ndarray) or ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D array of character ids, got {getattr(ids, 'shape', type(ids).__name__)}")
    k = (len(ids) - 1) // (batch_size * seq_len)
    if k < 1:
        raise ValueError(f"{len(ids)} ids are too few for batch_size={batch_size} x seq_len={seq_len}")
    return ids[: 1 + batch_size * seq_len * k]
