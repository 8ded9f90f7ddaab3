"""Chapter 10: the CMUdict loader (offline, fixed split by word), the G2P metrics and baseline,
and the Keras encoder-decoder with its greedy and beam-search decoders."""

from __future__ import annotations

import numpy as np
import pytest

from rnncourse.baselines.seq2seq import (LetterBaseline, align_letters, edit_distance, per_position_accuracy,
                                         phoneme_error_rate, scores_by_length, word_accuracy)
from rnncourse.data.cmudict import (SymbolVocab, cmudict_phonemes, encode_pairs, load_g2p,
                                    load_pronunciations)


# ------------------------------------------------------------------------------ loader


@pytest.fixture(scope="module")
def prons():
    return load_pronunciations()


def test_pronunciations_first_listed_stress_stripped(prons):
    phones = set(cmudict_phonemes())
    assert len(phones) == 39
    assert all(w.isalpha() and w.islower() and w.isascii() for w in prons)
    assert all(set(p) <= phones for p in prons.values())
    # "read" is listed as R EH1 D, then read(2) R IY1 D; "live" as L AY1 V, then L IH1 V
    assert prons["read"] == ("R", "EH", "D") and prons["live"] == ("L", "AY", "V")
    assert prons["cat"] == ("K", "AE", "T")
    assert load_pronunciations(keep_stress=True)["cat"] == ("K", "AE1", "T")
    assert "'bout" not in prons and "a(2)" not in prons


def test_length_filter(prons):
    short = load_pronunciations(min_len=3, max_len=5)
    assert short and all(3 <= len(w) <= 5 for w in short)
    assert {w: p for w, p in prons.items() if 3 <= len(w) <= 5} == short


def test_split_is_by_word_fixed_and_seeded():
    a = load_g2p(n_words=3000, seed=0)
    b = load_g2p(n_words=3000, seed=0)
    c = load_g2p(n_words=3000, seed=1)
    assert (len(a.train), len(a.val), len(a.test)) == (2400, 300, 300)
    assert a.train == b.train and a.val == b.val and a.test == b.test
    assert a.test != c.test
    train, val, test = ({w for w, _ in part} for part in (a.train, a.val, a.test))
    assert not train & test and not train & val and not val & test
    assert len(train) == len(a.train)  # one pronunciation per word
    # a smaller n_words draws its words from the front of the same shuffled order
    big = load_g2p(n_words=6000, seed=0)
    assert {w for w, _ in a.test} <= {w for w, _ in big.test}
    assert train | val | test <= {w for part in (big.train, big.val, big.test) for w, _ in part}


@pytest.mark.parametrize("kwargs, text", [
    (dict(n_words=2), "n_words"), (dict(val_fraction=0), "val_fraction"),
    (dict(val_fraction=0.5, test_fraction=0.5), r"val_fraction \+ test_fraction"),
    (dict(min_len=5, max_len=3), "max_len"), (dict(n_words=10**7), "n_words"),
])
def test_loader_refuses_bad_arguments(kwargs, text):
    with pytest.raises(ValueError, match=text):
        load_g2p(**kwargs)


def test_vocab_and_encoding_round_trip():
    letters = SymbolVocab("abcdefghijklmnopqrstuvwxyz")
    phonemes = SymbolVocab(cmudict_phonemes(), markers=True)
    assert letters.size == 27 and phonemes.size == 42
    pairs = [("cat", ("K", "AE", "T")), ("a", ("AH",))]
    arr = encode_pairs(pairs, letters, phonemes, source_len=4, target_len=5)
    assert arr.source.shape == (2, 4) and arr.source[1, 1:].tolist() == [0, 0, 0]
    assert arr.decoder_in[0, 0] == phonemes.start and arr.target[0, 3] == phonemes.end
    assert arr.decoder_in[0, 1:4].tolist() == arr.target[0, :3].tolist()
    assert phonemes.decode(arr.target[0]) == ("K", "AE", "T")
    assert phonemes.decode(arr.decoder_in[1]) == ("AH",)
    with pytest.raises(ValueError, match="length"):
        letters.encode(["abcdef"], 3)
    with pytest.raises(ValueError, match="markers"):
        letters.encode(["ab"], 3, add_end=True)


# ------------------------------------------------------------------------------ metrics and baseline


def test_edit_distance_and_rates():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["A", "B"]) == 2 and edit_distance(["A"], []) == 1
    assert edit_distance(("K", "AE", "T"), ("K", "AE", "T")) == 0
    refs = [("K", "AE", "T"), ("D", "AO", "G")]
    hyps = [("K", "AE", "T"), ("D", "AA", "G", "Z")]
    assert word_accuracy(refs, hyps) == 0.5
    assert phoneme_error_rate(refs, hyps) == pytest.approx(2 / 6)
    with pytest.raises(ValueError, match="same length"):
        word_accuracy(refs, hyps[:1])
    with pytest.raises(ValueError, match="empty"):
        phoneme_error_rate([], [])


def test_edit_distance_matches_brute_force_on_random_strings():
    rng = np.random.default_rng(0)

    def slow(a, b):  # the recursion itself
        if not a or not b:
            return len(a) + len(b)
        return min(slow(a[1:], b) + 1, slow(a, b[1:]) + 1, slow(a[1:], b[1:]) + (a[0] != b[0]))

    for _ in range(50):
        a = "".join(rng.choice(list("abc"), rng.integers(0, 6)))
        b = "".join(rng.choice(list("abc"), rng.integers(0, 6)))
        assert edit_distance(a, b) == slow(a, b)


def test_per_position_accuracy_and_length_bins():
    refs = [("A", "B", "C"), ("A", "B")]
    hyps = [("A", "X", "C"), ("A",)]
    assert per_position_accuracy(refs, hyps, 3).tolist() == [1.0, 0.0, 1.0]
    rows = scores_by_length(["abc", "ab"], refs, hyps, [(2, 2), (3, 3)])
    assert rows[0][:2] == ("2", 1) and rows[1][1] == 1
    with pytest.raises(ValueError, match="no word"):
        scores_by_length(["abc", "ab"], refs, hyps, [(7, 9)])


def test_alignment_and_baseline_on_a_toy_dictionary():
    pairs = [("cat", ("K", "AE", "T")), ("tax", ("T", "AE", "K", "S")), ("cake", ("K", "EY", "K")),
             ("take", ("T", "EY", "K")), ("act", ("AE", "K", "T"))] * 3
    units = align_letters(pairs)
    assert units[1] == [("T",), ("AE",), ("K", "S")]  # x -> K S
    assert units[2][-1] == ()  # silent e
    base = LetterBaseline().fit(pairs)
    assert base.predict_word("tact") == ("T", "AE", "K", "T")
    assert LetterBaseline(context=1).fit(pairs).predict_word("cat") == ("K", "AE", "T")
    with pytest.raises(ValueError, match="context"):
        LetterBaseline(context=2)


# ------------------------------------------------------------------------------ Keras model and decoding


@pytest.fixture(scope="module")
def keras_mod():
    from rnncourse.repro import setup_tensorflow

    return setup_tensorflow(seed=0)


def _toy(n=64, seed=0):
    """Copy task with a twist: letters 1..5 -> 'phonemes' 3..7 (ids above the markers), reversed."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 6, size=n)
    src = np.zeros((n, 5), dtype=np.int32)
    dec_in = np.zeros((n, 6), dtype=np.int32)
    tgt = np.zeros((n, 6), dtype=np.int32)
    for i, L in enumerate(lengths):
        s = rng.integers(1, 6, size=L)
        y = (s[::-1] + 2).tolist()
        src[i, :L] = s
        dec_in[i, :L + 1] = [1] + y
        tgt[i, :L + 1] = y + [2]
    return src, dec_in, tgt


@pytest.mark.parametrize("attention", [None, "dot", "additive"])
def test_step_model_reproduces_teacher_forced_model(keras_mod, attention):
    """Running the step model over the gold prefix gives the training model's probabilities:
    the two share their weights and compute the same thing."""
    from rnncourse.keras_models.seq2seq import build_seq2seq, teacher_forced_predictions

    m = build_seq2seq(6, 8, units=8, embed=4, attention=attention)
    src, dec_in, _ = _toy(4)
    full = m.training.predict_on_batch([src, dec_in])
    np.testing.assert_array_equal(teacher_forced_predictions(m, src, dec_in), full.argmax(-1))
    enc_out, state = m.encode(src)
    for t in range(dec_in.shape[1]):
        probs, state, w = m.step(dec_in[:, t], state, enc_out, src)
        np.testing.assert_allclose(probs, full[:, t], atol=1e-5)
        if attention:
            np.testing.assert_allclose(w.sum(axis=1), 1, atol=1e-5)
            assert (w[src == 0] < 1e-6).all()  # padding gets no attention
        else:
            assert (w == 0).all()
    assert m.calls["step calls"] == dec_in.shape[1] and m.calls["hypothesis steps"] == 4 * dec_in.shape[1]


def test_beam_width_one_is_greedy(keras_mod):
    from rnncourse.keras_models.seq2seq import beam_search, build_seq2seq, greedy_decode, train_seq2seq
    from rnncourse.data.cmudict import G2PArrays

    keras_mod.utils.set_random_seed(1)
    m = build_seq2seq(6, 8, units=8, embed=4, attention="dot")
    src, dec_in, tgt = _toy(64)
    data = G2PArrays(src, dec_in, tgt)
    history = train_seq2seq(m, data, data, epochs=2, batch_size=32)
    assert history["epoch"] == [1, 2] and len(history["val loss"]) == 2
    greedy, weights = greedy_decode(m, src, start=1, end=2, max_len=6)
    one, _ = beam_search(m, src, start=1, end=2, max_len=6, width=1)
    np.testing.assert_array_equal(greedy, one)
    assert weights.shape == (64, 6, 5)
    _, s3 = beam_search(m, src, start=1, end=2, max_len=6, width=3)
    assert np.isfinite(s3).all() and (s3 <= 0).all()  # summed log-probabilities
    with pytest.raises(ValueError, match="width"):
        beam_search(m, src, 1, 2, 6, width=0)


def test_build_refuses_bad_arguments(keras_mod):
    from rnncourse.keras_models.seq2seq import build_seq2seq

    with pytest.raises(ValueError, match="attention"):
        build_seq2seq(6, 8, attention="luong")
    with pytest.raises(ValueError, match="units"):
        build_seq2seq(6, 8, units=0)
